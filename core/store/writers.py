"""Detection's results into the store: breaches, incidents, device scores and the baseline.

`StoreSink` is the plantwatch.core.detection.contracts.DetectionSink the pipeline gives the
Detector; `load_baseline` reads what earlier runs learned. Writes happen inside the caller's
transaction. Stored shapes are described in core/store/migrations.py (model fields hold model
ids; packet references are packed, core/capture/refs.py).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from plantwatch.core.detection.baseline import Baseline
from plantwatch.core.detection.models import load_config
from plantwatch.core.detection.records import Breach, Incident
from plantwatch.core.store import state as pipeline_state
from plantwatch.core.store.database import Store
from plantwatch.core.store.rows import breach_row, incident_row
from plantwatch.core.store.triage_apply import apply_triage, save_regroup_config

BASELINE_STATE = "baseline"


def load_baseline(store: Store) -> Baseline:
    """The baseline earlier runs learned into `store` (empty when none did)."""
    baseline = Baseline()
    pipeline_state.load(store, BASELINE_STATE, baseline)
    return baseline


class StoreSink:
    """Writes one run's detections; a later call of the same run (a live checkpoint, then the
    end of the run) replaces what an earlier one wrote, deleting breaches and incidents that a
    later detection grew into others."""

    def __init__(self, store: Store, config: dict[str, Any] | None = None) -> None:
        """`config`: the detection config of the run, None for the defaults (its incident and
        scoring thresholds are kept in the store, so re-scoring after triage groups as detection did)."""
        self.store = store
        self.config = config
        self._written: tuple[set[int], set[int]] = (set(), set())  # breach, incident ids of this run

    @property
    def written(self) -> tuple[set[int], set[int]]:
        """Breach and incident ids this run has written so far (a live run's provisional rows)."""
        return set(self._written[0]), set(self._written[1])

    def write_detection(self, breaches: list[Breach], incidents: list[Incident],
                        scores: list[tuple[str, int, float, int]]) -> None:
        st = self.store
        old_b, old_i = self._written
        gone_b = old_b - {b.breach_id for b in breaches}
        gone_i = old_i - {i.incident_id for i in incidents}
        for bid in sorted(gone_b):
            for table in ("breaches", "breach_sessions", "breach_detected"):
                st.execute(f"DELETE FROM {table} WHERE breach_id = ? AND site = ?", (bid, st.site))
        for iid in sorted(gone_i):
            for table in ("incidents", "incidents_detected"):
                st.execute(f"DELETE FROM {table} WHERE incident_id = ? AND site = ?", (iid, st.site))
        self._written = ({b.breach_id for b in breaches}, {i.incident_id for i in incidents})
        if breaches:
            st.upsert("breaches", pl.DataFrame([breach_row(b) for b in breaches],
                                               schema_overrides={"incident_id": pl.Int64}))
            links = [(b.breach_id, s) for b in breaches for s in b.sessions]
            if links:
                st.upsert("breach_sessions", pl.DataFrame(links, schema=["breach_id", "session_id"],
                                                          orient="row").unique())
            st.upsert("breach_detected", pl.DataFrame(
                [(b.breach_id, b.score, b.incident_id) for b in breaches],
                schema={"breach_id": pl.Int64, "score": pl.Float64, "incident_id": pl.Int64}, orient="row"))
        if incidents:
            rows = pl.DataFrame([incident_row(i) for i in incidents])
            st.upsert("incidents", rows)
            st.upsert("incidents_detected", rows)
        if scores:
            frame = pl.DataFrame(scores, schema=["device", "ts", "score", "breaches"], orient="row")
            st.upsert("device_scores", frame)
            st.upsert("device_scores_detected", frame)
        # what detection wrote is kept as detected; the analyst's triage in force applies on top
        save_regroup_config(st, self.config or load_config())
        apply_triage(st)

    def write_baseline(self, baseline: Baseline, devices: pl.DataFrame, meta: dict[str, str]) -> None:
        if devices.height:
            self.store.upsert("baseline_devices", devices.with_columns(
                pl.col("ports_used").fill_null("[]"), pl.col("ports_served").fill_null("[]")))
        self.store.upsert("baseline_meta", pl.DataFrame({"name": list(meta), "value": list(meta.values())}))
        pipeline_state.save(self.store, BASELINE_STATE, baseline)


__all__ = ["StoreSink", "load_baseline", "breach_row", "incident_row", "BASELINE_STATE"]
