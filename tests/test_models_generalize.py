"""The models issue 10 added or widened, each on the smallest traffic that shows it: horizons of
the failed-connection models, the field device acting as client, the command flood, beaconing,
population references of data volume, DNP3 reads as reconnaissance, and scores that a provided
baseline never lowers below cold start."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plantwatch.core.decode.schema import APP_DNP3, APP_MODBUS, APP_TLS, CLS_READ
from plantwatch.core.detection.models.beacon import regularity
from tests.test_models import (
    HMI,
    HOUR,
    MB_DEVID,
    MB_REG,
    NEW,
    NEWDEV,
    NS,
    PLC1,
    PLC2,
    PLC3,
    READ_HR,
    T_DETECT,
    WS1,
    WS2,
    detect,
    fired,
    learned,  # noqa: F401 - the module's fixture
    op,
    sess,
)

MIN = 60 * NS
DNP_READ = op(APP_DNP3, 1, CLS_READ, "Read", 4)


def test_a_scan_spread_over_hours_fires_on_a_longer_horizon(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    # one probe every 4 minutes for 3 hours: never 10 in 5 minutes, 45 distinct targets in all
    slow = [sess(NEW, f"10.20.20.{100 + i}", 502, T_DETECT + i * 4 * MIN, state="unanswered") for i in range(45)]
    b = fired(detect(learned, tmp_path, slow, NEWDEV), "net.failed_internal")
    assert len(b) == 1 and b[0].details["horizon"] == "24 h"
    assert "counted over the 24 h horizon" in b[0].explanation
    ics = fired(detect(learned, tmp_path, slow, NEWDEV), "ics.failed_connections")
    assert len(ics) == 1 and ics[0].details["horizon"] in ("1 h", "24 h")
    burst = [sess(NEW, f"10.20.20.{100 + i}", 502, T_DETECT + i * NS, state="unanswered") for i in range(12)]
    b = fired(detect(learned, tmp_path, burst, NEWDEV), "net.failed_internal")
    assert len(b) == 1 and b[0].details["horizon"] == "5 min"   # one breach, the shortest horizon


def test_a_field_device_polling_a_peer_contradicts_its_role_at_cold_start(tmp_path: Path) -> None:
    normal = [sess(HMI, PLC1, 502, T_DETECT, app=APP_MODBUS, ops=(READ_HR,)),
              sess(HMI, PLC2, 502, T_DETECT, app=APP_MODBUS, ops=(READ_HR,))]
    peer = [sess(PLC1, PLC2, 502, T_DETECT + MIN, app=APP_MODBUS, ops=(READ_HR,))]
    b = fired(detect(None, tmp_path, normal + peer), "ics.role_contradiction")
    assert len(b) == 1 and b[0].device == PLC1 and b[0].devices == [PLC1, PLC2]
    assert "field device" in b[0].explanation and "there is no baseline yet" in b[0].explanation
    assert not fired(detect(None, tmp_path, normal), "ics.role_contradiction")


def test_a_flood_of_writes_outranks_one_write_and_states_the_rate(tmp_path: Path) -> None:
    flood = op(APP_MODBUS, 6, MB_REG["cls"], "Write Single Register", 2000)
    rows = [sess(HMI, PLC1, 502, T_DETECT, app=APP_MODBUS, ops=(flood,), dur_s=60)]
    b = fired(detect(None, tmp_path, rows), "ics.action_rate")
    assert len(b) == 1 and b[0].details["per_minute"] == 2000.0
    assert "2,000 per minute" in b[0].explanation
    one = [sess(HMI, PLC1, 502, T_DETECT, app=APP_MODBUS, ops=(MB_REG,), dur_s=60)]
    assert not fired(detect(None, tmp_path, one), "ics.action_rate")


def test_a_flood_of_connections_to_a_controller_states_its_rate(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    # 600 connections to PLC1:502 in a minute, most refused: connection exhaustion
    flood = [sess(NEW, PLC1, 502, T_DETECT + k * NS // 10, state="refused" if k % 3 else "closed", dur_s=0.05)
             for k in range(600)]
    b = fired(detect(None, tmp_path, flood, NEWDEV), "ics.connection_rate")
    assert len(b) == 1 and b[0].device == NEW and b[0].devices == [NEW, PLC1]
    assert b[0].details["connections"] == 600 and b[0].details["per_minute"] == 600.0
    assert "600 per minute" in b[0].explanation and "there is no baseline yet" in b[0].explanation
    # a poller reconnecting every two seconds is no flood, at cold start or against its learned edge
    poller = [sess(HMI, PLC1, 502, T_DETECT + k * 2 * NS, app=APP_MODBUS, ops=(READ_HR,), dur_s=0.5) for k in range(300)]
    assert not fired(detect(None, tmp_path, poller), "ics.connection_rate")
    b = fired(detect(learned, tmp_path, flood, NEWDEV), "ics.connection_rate")
    assert len(b) == 1 and "never carried one while learning" in b[0].explanation


def test_beaconing_to_a_rare_external_endpoint(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    c2 = "198.51.100.77"
    rng = np.random.default_rng(5)
    t = T_DETECT
    rows = []
    for _ in range(14):
        rows.append(sess(WS1, c2, 443, t, app=APP_TLS, tls_no_sni=True, up=int(rng.integers(390, 410)), down=950))
        t += int(rng.integers(25, 35)) * MIN
    b = fired(detect(learned, tmp_path, rows), "net.beacon")
    assert len(b) == 1 and b[0].device == WS1 and b[0].details["connections"] == 14
    assert b[0].details["score"] >= 0.8 and "every 29 min (median" in b[0].explanation
    # irregular: bursts then silence, sizes all over the place
    rows = [sess(WS1, c2, 443, T_DETECT + k * k * 7 * MIN, app=APP_TLS, up=100 * (k + 1) ** 2) for k in range(10)]
    assert not fired(detect(learned, tmp_path, rows), "net.beacon")
    assert regularity(np.full(10, 60.0)) == (1.0, 1.0)


def test_a_field_device_sending_tens_of_kb_is_unusual_volume(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    push = [sess(PLC1, PLC3, 21, T_DETECT, up=60_000, down=0)]
    b = fired(detect(learned, tmp_path, push), "net.data_volume")
    assert len(b) == 1 and b[0].details["baseline"] == "zone and role" and b[0].details["baseline_max"] == 0
    assert "no 10.20.20.21-like device" in b[0].explanation


def test_dnp3_reads_from_a_source_new_to_the_outstations_are_recon(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    rows = [sess(WS1, ip, 20000, T_DETECT + k * MIN, app=APP_DNP3, ops=(DNP_READ,))
            for k, ip in enumerate((PLC1, PLC2, PLC3))]
    b = fired(detect(learned, tmp_path, rows), "ics.new_discover")
    assert len(b) == 1 and b[0].details["targets"] == 3 and "DNP3 reads" in b[0].explanation


def test_identity_reads_spread_over_hours_fire_on_a_longer_horizon(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    # a new laptop reads one device's identity every 20 minutes: never 3 in 10 minutes
    targets = [PLC1, PLC2, PLC3, *(f"10.20.20.{60 + i}" for i in range(5))]
    slow = [sess(NEW, ip, 502, T_DETECT + k * 20 * MIN, app=APP_MODBUS, ops=(MB_DEVID,)) for k, ip in enumerate(targets)]
    b = fired(detect(learned, tmp_path, slow, NEWDEV), "ics.new_discover")
    assert len(b) == 1 and b[0].details["horizon"] in ("1 h", "24 h") and b[0].details["targets"] >= 4
    assert f"counted over the {b[0].details['horizon']} horizon" in b[0].explanation
    burst = [sess(NEW, ip, 502, T_DETECT + k * 30 * NS, app=APP_MODBUS, ops=(MB_DEVID,)) for k, ip in enumerate(targets)]
    b = fired(detect(learned, tmp_path, burst, NEWDEV), "ics.new_discover")
    assert len(b) == 1 and b[0].details["horizon"] == "10 min"   # one breach, the shortest horizon
    assert not fired(detect(learned, tmp_path, slow[:3], NEWDEV), "ics.new_discover")


def test_learning_never_lowers_a_cold_start_score(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    stop = op(APP_MODBUS, 5, MB_REG["cls"], "Write Single Coil")
    rows = [sess(NEW, PLC1, 502, T_DETECT, app=APP_MODBUS, ops=(stop, MB_REG))]
    cold = fired(detect(None, tmp_path, rows, NEWDEV), "ics.new_action")
    warm = fired(detect(learned, tmp_path, rows, NEWDEV), "ics.new_action")
    assert cold and warm and max(b.score for b in warm) >= max(b.score for b in cold)
    assert HOUR  # the shared unit, imported for the reader


def test_a_flood_of_new_writes_outranks_a_few_in_new_action(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    def writes(n: int) -> list[dict]:
        kinds = (op(APP_MODBUS, 6, MB_REG["cls"], "Write Single Register", n),
                 op(APP_MODBUS, 16, MB_REG["cls"], "Write Multiple Registers", n))
        return [sess(HMI, PLC3, 502, T_DETECT, app=APP_MODBUS, ops=kinds, dur_s=60)]
    few = fired(detect(learned, tmp_path, writes(1)), "ics.new_action")
    flood = fired(detect(learned, tmp_path, writes(1000)), "ics.new_action")
    assert len(few) == 1 and len(flood) == 1
    assert flood[0].score > few[0].score
    assert flood[0].details["per_minute"] == 2000.0 and few[0].details["per_minute"] == 2.0
    assert "2,000.0 per minute, above the 30 per minute expected of anyone" in flood[0].explanation
    assert "(2.0 per minute)" in few[0].explanation


def test_volume_to_a_new_server_is_compared_with_servers_of_its_role_on_that_port(
        learned: Path, tmp_path: Path) -> None:  # noqa: F811
    # a file server nobody used while learning: its port has no history, the plant's other
    # server on 445 (the DC, ~10-13 kB an hour from each client) is the reference
    fs = "10.10.10.3"
    extra = {fs: ("it", "server", [], "FS01", None, T_DETECT - 30 * HOUR)}
    rows = [sess(WS2, fs, 445, T_DETECT, up=6_000_000, down=20_000, dur_s=600)]
    b = fired(detect(learned, tmp_path, rows, extra), "net.data_volume")
    assert len(b) == 1 and b[0].details["baseline"] == "server port and role", [x.details for x in b]
    assert f"the largest hour of any client of port 445 on a server like {fs}" in b[0].explanation


def test_a_brute_force_against_an_it_service_states_its_rate(learned: Path, tmp_path: Path) -> None:  # noqa: F811
    # 400 RDP logons tried against the DC in two minutes, one connection each: a password spray
    spray = [sess(NEW, "10.10.10.2", 3389, T_DETECT + k * NS * 3 // 10, dur_s=0.2) for k in range(400)]
    b = fired(detect(None, tmp_path, spray, NEWDEV), "net.connection_rate")
    assert len(b) == 1 and b[0].device == NEW and b[0].devices == [NEW, "10.10.10.2"]
    assert b[0].details["connections"] == 400 and b[0].details["port"] == 3389
    assert "there is no baseline yet" in b[0].explanation and "200 per minute" in b[0].explanation
    assert not fired(detect(None, tmp_path, spray, NEWDEV), "ics.connection_rate")   # an IT service
    # the file shares the workstations opened every hour while learning are no flood, nor is a
    # burst of 120 lookups in a minute
    shares = [sess(WS1, "10.10.10.2", 445, T_DETECT + k * 30 * NS) for k in range(200)]
    assert not fired(detect(learned, tmp_path, shares), "net.connection_rate")
    dns = [sess(WS1, "10.10.10.2", 53, T_DETECT + k * NS // 2, proto=17, dur_s=0.01) for k in range(120)]
    assert not fired(detect(learned, tmp_path, dns), "net.connection_rate")
    b = fired(detect(learned, tmp_path, spray, NEWDEV), "net.connection_rate")
    assert len(b) == 1 and "never carried one while learning" in b[0].explanation


def test_a_shared_service_many_clients_use_hard_is_no_flood_until_one_stands_out(tmp_path: Path) -> None:
    # cold start: six workstations each look up 300 names a minute at the resolver (no baseline
    # to say so, but each is like the others); a seventh sprays it at 2,000 a minute
    ws = [f"10.10.30.{10 + i}" for i in range(6)]
    dns = [sess(c, "10.10.10.2", 53, T_DETECT + k * NS // 5 + i, proto=17, dur_s=0.01)
           for i, c in enumerate(ws) for k in range(600)]
    runs = iter(range(3))

    def fresh() -> Path:   # each a run into a store of its own
        p = tmp_path / str(next(runs))
        p.mkdir()
        return p

    assert not fired(detect(None, fresh(), dns), "net.connection_rate")
    spray = [sess(NEW, "10.10.10.2", 53, T_DETECT + k * NS * 3 // 100, proto=17, dur_s=0.01) for k in range(2000)]
    b = fired(detect(None, fresh(), dns + spray, NEWDEV), "net.connection_rate")
    assert [x.device for x in b] == [NEW]
    assert "1.5x the 3 busiest other clients of this service (at least 300 per minute each)" in b[0].explanation
    # with fewer than three other clients there is no peer reference: the fixed bound decides
    assert len(fired(detect(None, fresh(), dns[:1200]), "net.connection_rate")) == 2
