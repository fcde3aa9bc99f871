"""The typed seams of detection: what a model is, and where the detector's results go.

- `DetectionModel`: a model module (core/detection/models/*.py) has `MODEL` and `run(ctx)`.
- `DetectionSink`: what the detector hands its results to. The detector only computes; a sink
  writes (plantwatch.core.store.writers.StoreSink keeps them in the store). The pipeline gives
  the detector its baseline and its sink, so detection never imports the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import polars as pl

if TYPE_CHECKING:
    from plantwatch.core.detection.baseline import Baseline
    from plantwatch.core.detection.models.base import Context, Model
    from plantwatch.core.detection.records import Breach, Incident


@runtime_checkable
class DetectionModel(Protocol):
    """A detection model: its metadata and a run over the context that returns its breaches."""

    MODEL: Model

    def run(self, ctx: Context) -> list[Breach]: ...


class DetectionSink(Protocol):
    """Receives what one detection found, and the baseline once it has learned the run."""

    def write_detection(self, breaches: list[Breach], incidents: list[Incident],
                        scores: list[tuple[str, int, float, int]]) -> None:
        """Breaches, incidents and device threat scores (device, hour ts, score, breaches) of
        the run so far: they replace what the previous call of the same run wrote."""
        ...

    def write_baseline(self, baseline: Baseline, devices: pl.DataFrame, meta: dict[str, str]) -> None:
        """The learned baseline (kept for the next run), its device table and its meta rows."""
        ...


__all__ = ["DetectionModel", "DetectionSink"]
