"""Maturity per pair: while the network is still learning (three hours nobody named normal), a
history model judges a (client, server, service) pair whose own baseline holds enough observations,
and the breach, the models' states and the report state one maturity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plantwatch.core.decode.schema import APP_MODBUS, CLS_DISCOVER
from plantwatch.core.detection.detector import Detector
from plantwatch.core.store.database import Store
from plantwatch.core.store.writers import StoreSink, load_baseline
from plantwatch.core.views.report import detection
from tests.test_models import (
    HMI,
    MB_COIL,
    MB_DEVID,
    MB_SRVID,
    MB_WRITE,
    NS,
    PLC1,
    PLC3,
    T0,
    ZONES,
    detect,
    devices,
    fired,
    frame,
    op,
    sess,
)

MB_CONFORMITY = op(APP_MODBUS, 43, CLS_DISCOVER, "Read Device Identification (extended)")
T_NEXT = T0 + 4 * 3600 * NS


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> Path:
    """Three hours of an HMI polling PLC1 every six minutes (30 sessions, 300 reads), nothing else."""
    path = tmp_path_factory.mktemp("pairs") / "short.sqlite"
    rows = [sess(HMI, PLC1, 502, T0 + k * 360 * NS, app=APP_MODBUS,
                 ops=(op(APP_MODBUS, 3, 1, "Read Holding Registers", 10),)) for k in range(30)]
    with Store(path) as st, st.transaction():
        det = Detector(load_baseline(st), StoreSink(st), ZONES, mode="detect")
        det.update(None, None, frame(rows))
        det.finish(None, devices())
    return path


def test_a_mature_pair_is_judged_while_the_network_learns(short: Path, tmp_path: Path) -> None:
    writes = [sess(HMI, PLC1, 502, T_NEXT, app=APP_MODBUS, ops=(MB_WRITE, MB_COIL))]
    b = fired(detect(short, tmp_path, writes), "ics.new_action")
    assert len(b) == 1 and b[0].details["judged_by"] == "pair"
    assert "the network is still learning, but this pair is mature by its own 330 observation(s)" in b[0].explanation
    # the same writes to a controller the HMI never polled: no pair history, a trusted writer at cold start
    assert not fired(detect(short, tmp_path, [sess(HMI, PLC3, 502, T_NEXT, app=APP_MODBUS, ops=(MB_WRITE, MB_COIL))]),
                     "ics.new_action")


def test_new_discovery_on_a_mature_pair_fires_and_the_report_says_pairs(short: Path, tmp_path: Path) -> None:
    recon = [sess(HMI, PLC1, 502, T_NEXT, app=APP_MODBUS, ops=(MB_DEVID, MB_SRVID, MB_CONFORMITY))]
    path = tmp_path / "d.sqlite"
    path.write_bytes(short.read_bytes())
    with Store(path) as st, st.transaction():
        det = Detector(load_baseline(st), StoreSink(st), ZONES, mode="detect")
        det.update(None, None, frame(recon))
        res = det.finish(None, devices())
    assert res.cold and res.models["ics.new_discover"] == "pairs" and res.models["rdp.admin"] == "learning"
    b = fired(res.breaches, "ics.new_discover")
    assert len(b) == 1 and b[0].details["judged_by"] == "pair" and "mature by its own" in b[0].explanation
    with Store(path) as st:
        det_view = detection(st)
    states = {m["id"]: m["state"] for m in det_view["models"]}
    assert states["ics.new_discover"] == "pairs" and det_view["baseline"] == "learning"
    assert json.dumps(det_view)  # the JSON states the same
    assert not fired(detect(short, tmp_path, [sess(HMI, PLC3, 502, T_NEXT, app=APP_MODBUS,
                                                    ops=(MB_DEVID, MB_SRVID, MB_CONFORMITY))]), "ics.new_discover")


def test_a_pair_that_is_its_own_volume_reference_is_judged_while_the_network_learns(
        short: Path, tmp_path: Path) -> None:
    """The HMI was active with PLC1 in three hours of learning (min_reference_hours): 40 MB from
    the PLC in one hour is judged against that pair's own hours; the same 40 MB from a PLC the HMI
    never talked to has only pooled references, which wait for the network."""
    big = 40_000_000
    b = fired(detect(short, tmp_path, [sess(HMI, PLC1, 502, T_NEXT, app=APP_MODBUS, down=big)]), "net.data_volume")
    assert len(b) == 1 and b[0].details["judged_by"] == "pair" and b[0].details["baseline"] == "pair"
    assert "this pair is mature by its own 3 active hour(s)" in b[0].explanation
    assert not fired(detect(short, tmp_path, [sess(HMI, PLC3, 502, T_NEXT, app=APP_MODBUS, down=big)]),
                     "net.data_volume")
