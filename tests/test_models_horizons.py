"""Horizons of the discovery and call-home models that count distinct targets: an ARP sweep of a
subnet spread over hours and a call-home to new external endpoints spread over a night each fire
on a longer horizon and say which; a burst fires once, on the shortest."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from plantwatch.core.decode.addr import text_to_ip
from plantwatch.core.detection.detector import Detector
from plantwatch.core.detection.records import Breach
from plantwatch.core.store.database import Store
from plantwatch.core.store.writers import StoreSink, load_baseline
from tests.test_models import (
    NS,
    T_DETECT,
    WS1,
    WS2,
    ZONES,
    detect,
    devices,
    fired,
    frame,
    learned,  # noqa: F401 - the module's fixture
    sess,
)

MIN = 60 * NS
SWEEPER = "10.20.20.250"


def arp_requests(sender: str, targets: list[str], times: list[int]) -> pl.DataFrame:
    spa = text_to_ip(sender)[1] & 0xFFFFFFFF
    return pl.DataFrame({
        "ts": times, "arp_op": [1] * len(times), "arp_spa": [spa] * len(times),
        "arp_tpa": [text_to_ip(t)[1] & 0xFFFFFFFF for t in targets],
        "file_id": [1] * len(times), "frame": list(range(1, len(times) + 1))},
        schema={"ts": pl.Int64(), "arp_op": pl.Int32(), "arp_spa": pl.UInt64(), "arp_tpa": pl.UInt64(),
                "file_id": pl.Int32(), "frame": pl.Int64()})


def detect_arp(store_path: Path, tmp_path: Path, arp: pl.DataFrame) -> list[Breach]:
    path = tmp_path / "arp.sqlite"
    shutil.copy(store_path, path)
    with Store(path) as st, st.transaction():
        det = Detector(load_baseline(st), StoreSink(st), ZONES, mode="detect")
        det.update(arp, None, frame([sess(WS1, "10.10.10.2", 445, T_DETECT)]))
        return det.finish(None, devices()).breaches


def test_a_slow_arp_sweep_of_a_subnet_fires_on_the_day_horizon(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    # one address every 3 minutes for 10 hours: never 32 in 5 minutes nor 64 in an hour
    targets = [f"10.20.20.{i}" for i in range(1, 201)]
    slow = arp_requests(SWEEPER, targets, [T_DETECT + i * 3 * MIN for i in range(200)])
    b = fired(detect_arp(learned, tmp_path, slow), "net.arp_sweep")
    assert len(b) == 1 and b[0].device == SWEEPER and b[0].details["horizon"] == "24 h"
    assert b[0].details["targets"] == 200 and "(counted over the 24 h horizon)" in b[0].explanation
    burst = arp_requests(SWEEPER, targets[:40], [T_DETECT + i * NS for i in range(40)])
    b = fired(detect_arp(learned, tmp_path, burst), "net.arp_sweep")
    assert len(b) == 1 and b[0].details["horizon"] == "5 min"   # one breach, the shortest horizon
    # a host asking for a few dozen peers over a day is no sweep
    few = arp_requests(SWEEPER, targets[:60], [T_DETECT + i * 10 * MIN for i in range(60)])
    assert not fired(detect_arp(learned, tmp_path, few), "net.arp_sweep")


def test_a_call_home_spread_over_a_night_fires_on_a_longer_horizon(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    # a new rare external endpoint every 45 minutes for 6 hours: never 5 in 15 minutes
    ends = [f"198.51.100.{10 + i}" for i in range(8)]
    night = [sess(WS2, ip, 443, T_DETECT + i * 45 * MIN) for i, ip in enumerate(ends)]
    b = fired(detect(learned, tmp_path, night), "net.external")
    assert len(b) == 1 and b[0].device == WS2 and b[0].details["horizon"] == "24 h"
    assert b[0].details["endpoints"] == 8 and "(counted over the 24 h horizon)" in b[0].explanation
    burst = [sess(WS2, ip, 443, T_DETECT + i * 20 * NS) for i, ip in enumerate(ends)]
    b = fired(detect(learned, tmp_path, burst), "net.external")
    assert len(b) == 1 and b[0].details["horizon"] == "15 min" and b[0].details["connections"] == 8
    assert not fired(detect(learned, tmp_path, night[:5]), "net.external")
