"""Thresholds relative to what learning saw: a plant whose asset-management server sweeps the
network every night learns that server's fan-out peaks; the same sweep the next night raises
nothing, while a new source doing the same still fires. The peaks are counted exactly over
sliding windows, and a baseline stored before peaks resumes with none."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.decode.addr import text_to_ip
from plantwatch.core.detection.baseline import Baseline
from plantwatch.core.detection.detector import Detector
from plantwatch.core.detection.peaks import LearnedPeaks, window_peaks
from plantwatch.core.flows.stateful import ComponentState
from plantwatch.core.store.database import Store
from plantwatch.core.store.writers import StoreSink, load_baseline
from tests.test_models import (
    HOUR,
    NEW,
    NEWDEV,
    NS,
    T0,
    T_DETECT,
    ZONES,
    detect,
    devices,
    fired,
    frame,
    normal_day,
    sess,
)
from tests.test_models_horizons import arp_requests, detect_arp

SCANNER = "10.10.10.30"   # the asset-management server
HOSTS = [f"10.10.10.{100 + i}" for i in range(40)] + [f"10.20.20.{100 + i}" for i in range(40)]


def sweep(src: str, t: int) -> list[dict]:
    """80 addresses on 445 in 4 minutes, most of them nobody answers."""
    return [sess(src, ip, 445, t + i * 3 * NS, state="unanswered" if i % 4 else "refused") for i, ip in enumerate(HOSTS)]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    """A day of normal traffic in which the scanner swept the network at 02:00, by sessions and ARP."""
    path = tmp_path_factory.mktemp("peaks") / "learned.sqlite"
    night = T0 + 2 * HOUR
    arp = arp_requests(SCANNER, HOSTS[:40], [night + i * 3 * NS for i in range(40)])
    with Store(path) as st, st.transaction():
        det = Detector(load_baseline(st), StoreSink(st), ZONES, mode="learn")
        det.update(arp, None, frame(normal_day() + sweep(SCANNER, night)))
        det.finish(None, devices({SCANNER: ("it", "server", [], "ASSETS", None, T0)}))
    return path


def test_the_nightly_scanner_is_normal_and_a_new_source_doing_the_same_is_not(scanned: Path, tmp_path: Path) -> None:
    extra = {SCANNER: ("it", "server", [], "ASSETS", None, T0), **NEWDEV}
    again = detect(scanned, tmp_path, sweep(SCANNER, T_DETECT), extra)
    assert not fired(again, "net.failed_internal") and not fired(again, "ics.failed_connections")
    b = fired(detect(scanned, tmp_path, sweep(NEW, T_DETECT), extra), "net.failed_internal")
    assert len(b) == 1 and b[0].device == NEW and b[0].details["threshold_from"] == "floor"
    # a much larger sweep by the scanner is still above what it learned, and says so
    bigger = sweep(SCANNER, T_DETECT) + [sess(SCANNER, f"10.10.11.{i}", 445, T_DETECT + i * NS, state="unanswered")
                                         for i in range(60)]
    b = fired(detect(scanned, tmp_path, bigger, extra), "net.failed_internal")
    assert len(b) == 1 and b[0].details["threshold_from"] == "source" and b[0].details["learned_peak"] == 80
    assert b[0].details["threshold"] == 121
    assert "above 1.5 times the 80 it reached itself over this horizon while learning" in b[0].explanation


def test_the_nightly_arp_sweep_is_normal_for_its_scanner_only(scanned: Path, tmp_path: Path) -> None:
    arp = arp_requests(SCANNER, HOSTS[:40], [T_DETECT + i * 3 * NS for i in range(40)])
    assert not fired(detect_arp(scanned, tmp_path, arp), "net.arp_sweep")
    other = "10.10.10.31"
    b = fired(detect_arp(scanned, tmp_path, arp_requests(other, HOSTS[:40], arp["ts"].to_list())), "net.arp_sweep")
    assert len(b) == 1 and b[0].device == other


def test_peaks_count_distinct_targets_in_sliding_windows() -> None:
    m = 60 * NS
    hi, lo = text_to_ip(SCANNER)
    # targets a, b, c at 0, 4 and 8 minutes, a again at 12: any 5 minutes hold 2, any 10 hold 3
    occ = pl.DataFrame({"src_hi": [hi] * 4, "src_lo": [lo] * 4, "t_hi": [0] * 4, "t_lo": [1, 2, 3, 1],
                        "t_port": [445] * 4, "ts": [0, 4 * m, 8 * m, 12 * m]},
                       schema={"src_hi": pl.UInt64(), "src_lo": pl.UInt64(), "t_hi": pl.UInt64(),
                               "t_lo": pl.UInt64(), "t_port": pl.Int32(), "ts": pl.Int64()})
    assert window_peaks(occ, 300)["peak"].to_list() == [2]
    assert window_peaks(occ, 600)["peak"].to_list() == [3]
    assert window_peaks(occ, 60)["peak"].to_list() == [1]


def test_the_network_part_is_what_several_sources_reached() -> None:
    srcs = ["10.10.10.21", "10.10.10.22", "10.10.10.23", "10.10.10.30"]
    ips = [text_to_ip(s) for s in srcs]
    peaks = pl.DataFrame({"measure": ["arp"] * 4, "horizon_s": [300] * 4, "src_hi": [i[0] for i in ips],
                          "src_lo": [i[1] for i in ips], "peak": [30, 40, 50, 200]},
                         schema={"measure": pl.String(), "horizon_s": pl.Int64(), "src_hi": pl.UInt64(),
                                 "src_lo": pl.UInt64(), "peak": pl.Int64()})
    lp = LearnedPeaks(peaks, margin=1.5, sources=3)
    assert lp.need("arp", 300, "10.10.10.30", 32).targets == 301                    # its own 200
    n = lp.need("arp", 300, NEW, 32)                                                # the third busiest: 40
    assert (n.targets, n.reason, n.peak) == (61, "network", 40)
    assert lp.need("arp", 3600, NEW, 64).reason == "floor"                          # nothing learned there
    assert LearnedPeaks().need("arp", 300, NEW, 32).targets == 32                   # cold start


def test_a_baseline_stored_before_peaks_resumes_with_none() -> None:
    b = Baseline()
    st = b.to_state()
    frames = {k: v for k, v in st.frames.items() if k != "_peaks"}
    old = ComponentState(2, frames, st.scalars)
    fresh = Baseline()
    fresh.from_state(old)
    assert fresh.peaks.height == 0 and fresh.peaks.schema == b.peaks.schema
