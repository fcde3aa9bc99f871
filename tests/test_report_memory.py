"""The analyze report does not grow with the store (issue 17): nothing reads every session, the
per-device lists are streamed (JSON byte-identical to the built report) or capped (summary)."""

from __future__ import annotations

import importlib.util
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.views import report, report_stream
from plantwatch.tui.cli import main
from tests.tui_support import needs_demo

ROOT = Path(__file__).resolve().parents[1]
SNAP7 = ROOT / "tests" / "data" / "real" / "s7comm_snap7.pcap"
DEVICES, SESSIONS = 300, 30_000


def _big_store_module() -> Any:
    spec = importlib.util.spec_from_file_location("big_store", ROOT / "bench" / "big_store.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Counting:
    """A cursor that counts the rows Python takes out of it, per statement."""

    def __init__(self, owner: _CountingDB, sql: str, cur: sqlite3.Cursor) -> None:
        self._owner, self._sql, self._cur = owner, sql, cur

    def _took(self, n: int) -> None:
        self._owner.rows.append((self._sql, n))

    def __iter__(self) -> Any:
        for row in self._cur:
            self._took(1)
            yield row

    def fetchall(self) -> list:
        rows = self._cur.fetchall()
        self._took(len(rows))
        return rows

    def fetchone(self) -> Any:
        row = self._cur.fetchone()
        self._took(row is not None)
        return row

    def fetchmany(self, size: int = 1) -> list:
        rows = self._cur.fetchmany(size)
        self._took(len(rows))
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


class _CountingDB:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.rows: list[tuple[str, int]] = []

    def execute(self, sql: str, *args: Any) -> _Counting:
        return _Counting(self, sql, self._db.execute(sql, *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def fetched(self, table: str) -> int:
        return sum(n for sql, n in self.rows if f"FROM {table} " in sql + " ")


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.sqlite"
    _big_store_module().write(path, DEVICES, SESSIONS)
    return path


def test_a_run_into_a_big_store_fetches_no_session_and_caps_the_summary(
        big_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.sqlite"
    path.write_bytes(big_store.read_bytes())
    written: dict[str, list[int]] = {}
    upsert = Store.upsert

    def counting_upsert(self: Store, table: str, frame: Any, *a: Any, **k: Any) -> Any:
        written.setdefault(table, []).append(frame.height)
        return upsert(self, table, frame, *a, **k)

    monkeypatch.setattr(Store, "upsert", counting_upsert)
    with Store(path) as st:
        assert st.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == SESSIONS
        counting = _CountingDB(st.db)
        st.db = counting  # type: ignore[assignment]
        Ingest(st).run([SNAP7])
        assert written["devices"][0] == 2   # the capture's two devices, not the 300 the store holds
        # then only the rows whose trusted role detection marks unverified (ingest.write_unverified_roles)
        unverified = st.execute("SELECT COUNT(*) FROM devices WHERE role LIKE '%?'").fetchone()[0]
        assert sum(written["devices"][1:]) <= unverified
        data = report_stream.capped(st, report.build(st, lazy=True), 50)
        # sessions are counted in SQL aggregates: a row per protocol or failing client comes
        # into Python (at most one per device), never one per session
        assert counting.fetched("sessions") <= DEVICES + 2 + 50
        assert counting.fetched("session_ops") <= DEVICES + 2 + 50
        # the summary took 50 devices from the cursor and counted the others in SQL
        assert len(data["devices"]) == 50
        assert data["more"]["devices"] == DEVICES + 2 - 50   # the capture's two devices are new
        assert counting.fetched("devices") <= 50 + 2
        assert data["sessions_by_protocol"][0]["sessions"] > SESSIONS // 2
        # the store held the inventory's and the baseline's state: the run built on it
        assert data["detection"]["baseline"] == "mature"


def test_plant_report_reads_only_the_devices_it_lists(big_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plantwatch.core.views.export import plant_report

    monkeypatch.setattr(plant_report, "DEVICE_ROWS", 25)
    with Store(big_store, readonly=True) as st:
        counting = _CountingDB(st.db)
        st.db = counting  # type: ignore[assignment]
        data = plant_report.report_data(st)
        assert data["devices_total"] == DEVICES and data["devices_more"] == DEVICES - 25
        assert counting.fetched("sessions") == 0
        # zone x role counts (a handful of rows), the 25 listed, the top talkers
        assert counting.fetched("devices") <= 25 + plant_report.TOP + 20
        counting.rows.clear()
        plant_report.report_data(st, 0)   # talkers since a time: summed in SQL, the top rows only
        assert counting.fetched("sessions") <= plant_report.TOP


def test_summary_says_how_many_more(big_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import plantwatch.tui.summary as summary

    path = tmp_path / "big.sqlite"
    path.write_bytes(big_store.read_bytes())
    monkeypatch.setattr(summary, "SUMMARY_ROWS", 20)
    res = CliRunner().invoke(main, ["analyze", str(SNAP7), "--store", str(path)])
    assert res.exit_code == 0, res.output
    assert f"1 capture(s), 64 packets, {DEVICES + 2} devices" in res.stdout
    assert f"and {DEVICES + 2 - 20:,} more devices (all of them: plantwatch analyze --json)" in res.stdout
    inventory = res.stdout.split("Inventory", 1)[1].split("and ", 1)[0]
    assert inventory.count("10.0.") == 20


def _streamed(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    report_stream.write_json(data, buf.write)
    return buf.getvalue()


def _same_json_streamed_and_built(path: Path) -> None:
    with Store(path, readonly=True) as st:
        built = json.dumps(report.build(st), indent=2, ensure_ascii=False) + "\n"
        assert _streamed(report.build(st, lazy=True)) == built
        eager = list(report.jsonl_records(report.build(st)))
        assert list(report.jsonl_records(report.build(st, lazy=True))) == eager


@needs_demo
def test_streamed_json_is_the_built_report_demo(demo_store: Path) -> None:
    _same_json_streamed_and_built(demo_store)


def test_streamed_json_is_the_built_report_hostile_and_empty(hostile_store: Path, empty_store: Path) -> None:
    _same_json_streamed_and_built(empty_store)
    _same_json_streamed_and_built(hostile_store)


def test_streamed_json_of_a_big_store(big_store: Path) -> None:
    _same_json_streamed_and_built(big_store)


def test_cli_json_is_the_built_report(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    res = CliRunner().invoke(main, ["analyze", str(SNAP7), "--store", str(path), "--json"])
    assert res.exit_code == 0, res.output
    with Store(path, readonly=True) as st:
        assert res.stdout == json.dumps(report.build(st), indent=2, ensure_ascii=False) + "\n"


def _plant_report_reference(store: Store, since_ns: int | None, rows: int) -> dict[str, Any]:
    """What `report --html` showed when it read the whole inventory and grouped sessions in Python."""
    from collections import Counter

    from plantwatch.core.decode.addr import ip_to_text

    everything = report.devices(store)
    by_zone: dict[str, Counter] = {}
    for d in everything:
        by_zone.setdefault(d["zone"] or d["zone_kind"] or "unknown", Counter())[d["role"] or "unknown"] += 1
    roles = sorted({r for c in by_zone.values() for r in c})
    zones = [{"zone": z, "total": sum(c.values()), "roles": {r: c.get(r, 0) for r in roles}}
             for z, c in sorted(by_zone.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
    per: dict[tuple[int, int], list[int]] = {}
    for chi, clo, shi, slo, up, down in store.execute(
            "SELECT client_hi, client_lo, server_hi, server_lo, SUM(bytes_c2s), SUM(bytes_s2c) FROM sessions"
            " WHERE first_ts >= ? GROUP BY client_hi, client_lo, server_hi, server_lo", (since_ns or 0,)):
        for key, sent, recv in (((chi, clo), up or 0, down or 0), ((shi, slo), down or 0, up or 0)):
            c = per.setdefault(key, [0, 0, 0])
            c[0], c[1], c[2] = c[0] + sent, c[1] + recv, c[2] + 1
    names = {d["device"]: (d["name"], d["role"], d["zone"]) for d in everything}
    talkers = []
    for (hi, lo), (sent, recv, n) in sorted(per.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), kv[0]))[:15]:
        d = ip_to_text(hi & 0xFFFF_FFFF_FFFF_FFFF, lo & 0xFFFF_FFFF_FFFF_FFFF)
        name, role, zone = names.get(d, (None, None, None))
        talkers.append({"device": d, "name": name, "role": role, "zone": zone, "bytes_sent": sent,
                        "bytes_received": recv, "sessions": n})
    return {"devices_total": len(everything), "zones": zones, "roles": roles, "devices": everything[:rows],
            "devices_more": max(0, len(everything) - rows), "talkers": talkers}


def _same_plant_report(path: Path, monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    from plantwatch.core.views.export import plant_report

    monkeypatch.setattr(plant_report, "DEVICE_ROWS", rows)
    with Store(path, readonly=True) as st:
        last = plant_report.last_packet_ns(st)
        for since in (None, 0, (last or 0) - 24 * 3_600_000_000_000):
            data = plant_report.report_data(st, since)
            want = _plant_report_reference(st, since, rows)
            if since is None:   # the whole inventory's talkers come from the devices table
                want["talkers"] = data["talkers"]
            assert {k: data[k] for k in want} == want


@needs_demo
def test_plant_report_counts_in_sql_what_it_counted_in_python_demo(
        demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_plant_report(demo_store, monkeypatch, 5)


def test_plant_report_counts_in_sql_what_it_counted_in_python_big(
        big_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_plant_report(big_store, monkeypatch, 40)
