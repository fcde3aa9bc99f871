"""The store on a real PostgreSQL server (a private cluster, tests/pg_cluster.py): the same
schema, the same SQL and the same results as SQLite."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.store.database import Store
from plantwatch.core.store.engine import dialect
from plantwatch.core.store.errors import StoreError
from plantwatch.core.store.migrations import MIGRATIONS
from plantwatch.core.views import eval as evaluation
from plantwatch.core.views import report
from plantwatch.tui.app import make_app
from plantwatch.tui.cli import main
from plantwatch.tui.widgets.table import SnapshotTable
from tests.tui_support import ATTACKER, DEMO, build_demo_store, needs_demo, settle

BREACH_COLS = ("breach_id, model, category, severity, phase, attack_ids, device, devices, first_ts, last_ts,"
               " score, importance, explanation, sessions, refs, details, incident_id")


@pytest.fixture(scope="module")
def pg_demo(pg_cluster) -> str:
    """The bundled demo, learned then detected, in a PostgreSQL store."""
    return build_demo_store(pg_cluster.create_database("demo"))


def _rows(location: str | Path, sql: str) -> list[tuple]:
    with Store(location, readonly=True) as st:
        return st.execute(sql).fetchall()


def test_dialect_rewrites_only_code() -> None:
    q = dialect.query("SELECT GROUP_CONCAT(DISTINCT port), user FROM t WHERE n LIKE '%?x' AND y = ? "
                      "ORDER BY CASE k WHEN 'a, b' THEN 1 ELSE 0 END, hi DESC", params=True)
    assert q == ("SELECT STRING_AGG(DISTINCT (port)::text, ','), \"user\" FROM t WHERE n LIKE '%%?x' AND y = %s "
                 "ORDER BY CASE k WHEN 'a, b' THEN 1 ELSE 0 END NULLS FIRST, hi DESC NULLS LAST")
    assert dialect.query("INSERT OR REPLACE INTO incident_triage (incident_id, fate, note) VALUES (?, ?, ?)",
                         params=True).endswith(
        "ON CONFLICT (incident_id, site) DO UPDATE SET fate = excluded.fate, note = excluded.note")
    assert dialect.query("PRAGMA busy_timeout=200", params=False) == ""
    assert dialect.query("SELECT a FROM s NOT INDEXED JOIN t INDEXED BY t_x ON s.i = t.i WHERE t.p = ?1 OR t.q = ?1",
                         params=True) == "SELECT a FROM s JOIN t ON s.i = t.i WHERE t.p = %(p1)s OR t.q = %(p1)s"


def test_every_migration_applies_on_postgresql(pg_cluster) -> None:
    dsn = pg_cluster.create_database("migrations")
    with Store(dsn) as st:
        assert st.version == len(MIGRATIONS)
        tables = {r[0] for r in st.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert set(dialect.primary_keys()) <= tables
        # the columns SQLite has, PostgreSQL has, in the same order
        for table in dialect.primary_keys():
            assert [r[1] for r in st.execute(f"PRAGMA table_info({table})").fetchall()]
    with Store(dsn) as st:    # opened again: nothing to migrate
        assert st.version == len(MIGRATIONS)


def test_a_database_of_another_program_is_refused(pg_cluster) -> None:
    import psycopg

    dsn = pg_cluster.create_database("foreign")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int)")
    with pytest.raises(StoreError, match="not a plantwatch store"):
        Store(dsn)
    with psycopg.connect(dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")] \
            == ["accounts"]


@needs_demo
def test_demo_gives_the_same_breaches_report_and_eval(pg_demo: str, demo_store: Path) -> None:
    sql = f"SELECT {BREACH_COLS} FROM breaches ORDER BY breach_id"
    pg, lite = _rows(pg_demo, sql), _rows(demo_store, sql)
    assert len(lite) > 5 and pg == lite
    truth = evaluation.load_truth(DEMO / "ground_truth.json")
    with Store(pg_demo, readonly=True) as a, Store(demo_store, readonly=True) as b:
        assert report.build(a) == report.build(b)
        assert evaluation.evaluate(a, truth) == evaluation.evaluate(b, truth)


@needs_demo
def test_cli_analyze_and_eval_into_postgresql(pg_cluster, tmp_path: Path) -> None:
    dsn = pg_cluster.create_database("cli")
    lite = tmp_path / "a.sqlite"
    out = {}
    for store in (dsn, str(lite)):
        r = CliRunner().invoke(main, ["analyze", str(DEMO / "incident.pcapng.gz"), "--learn",
                                      str(DEMO / "learn.pcapng.gz"), "--zones", str(DEMO / "zones.toml"),
                                      "--store", store, "--json"])
        assert r.exit_code == 0, r.output
        out[store] = json.loads(r.stdout)
        r = CliRunner().invoke(main, ["eval", "--truth", str(DEMO / "ground_truth.json"), "--store", store])
        assert r.exit_code == 0, r.output
        out[store, "eval"] = r.stdout
    assert out[dsn]["breaches"] and out[dsn]["breaches"] == out[str(lite)]["breaches"]
    assert out[dsn, "eval"] == out[str(lite), "eval"]


@needs_demo
def test_console_lists_the_demo_devices_from_postgresql(pg_demo: str) -> None:
    devices = _rows(pg_demo, "SELECT COUNT(*) FROM devices")[0][0]
    app = make_app(pg_demo, source="postgresql")

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert table.row_count == devices == app.store_status.devices
            assert table.selected_key == ATTACKER              # highest threat first, as on SQLite

    asyncio.run(run())


@needs_demo
def test_rows_carry_site_and_sensor(pg_cluster, tmp_path: Path) -> None:
    dsn = pg_cluster.create_database("sites")
    lite = tmp_path / "one.sqlite"
    for args in (["--site", "north", "--sensor", "n1", "learn", "--store", dsn],
                 ["learn", "--store", str(lite)]):
        r = CliRunner().invoke(main, [*args, str(DEMO / "learn.pcapng.gz"), "--zones", str(DEMO / "zones.toml")])
        assert r.exit_code == 0, r.output
    for table in ("sessions", "session_ops", "devices", "baseline_devices"):
        assert _rows(dsn, f"SELECT DISTINCT site, sensor FROM {table}") == [("north", "n1")]
    # a store of one box: site 'default', the sensor is this host
    assert _rows(lite, "SELECT DISTINCT site, sensor FROM devices") == [("default", socket.gethostname())]


def _copy_of(pg_cluster, dsn: str, name: str) -> str:
    """A new database made from the store `dsn` (PostgreSQL's template copy)."""
    import psycopg

    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{dsn.rsplit("/", 1)[1]}"')
    return pg_cluster.dsn(name)


@needs_demo
def test_export_report_and_triage_commands_on_postgresql(pg_cluster, pg_demo: str, demo_store: Path,
                                                         tmp_path: Path) -> None:
    lite = tmp_path / "demo.sqlite"
    shutil.copy(demo_store, lite)
    pg = _copy_of(pg_cluster, pg_demo, "demo_triage")
    incident, rdp = _rows(lite, "SELECT incident_id FROM incidents ORDER BY score DESC, incident_id LIMIT 1")[0][0], \
        _rows(lite, "SELECT breach_id FROM breaches WHERE model = 'rdp.admin' ORDER BY breach_id LIMIT 1")[0][0]
    out: dict[str, list[str]] = {}
    for name, store in (("sqlite", str(lite)), ("postgresql", pg)):
        said = []
        for args in (["triage", "ack", str(rdp), "--note", "seen"], ["accept", str(rdp), "--why", "the vendor's laptop"],
                     ["accepted", "--all"], ["triage", "list"],
                     ["report", "--html", str(tmp_path / f"{name}.html")],
                     ["export", "incident", str(incident), "--out", str(tmp_path / name)]):
            r = CliRunner().invoke(main, [*args, "--store", store])
            assert r.exit_code == 0, (args, r.output)
            said.append(re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "WHEN", r.stdout)   # wall clock: triage
                        .replace(str(tmp_path / name), "OUT").replace(f"{name}.html", "X.html"))
        out[name] = said
    assert out["postgresql"] == out["sqlite"]
    # the same incident gives the same evidence bytes from either engine
    assert (tmp_path / "postgresql" / "SHA256SUMS").read_text() == (tmp_path / "sqlite" / "SHA256SUMS").read_text()


def test_hostile_strings_and_nulls_round_trip_through_copy(pg_cluster) -> None:
    import polars as pl

    names = ["\\N", "", 'a,"b"\nc\r', "\x1b[31m[bold]x[/]", "ünï ✓", None]
    frame = pl.DataFrame({"device": [f"10.0.0.{i}" for i in range(len(names))], "name": names,
                          "is_router": [True, False, None, True, False, True],
                          "hi": [0, -1, 2**63 - 1, -(2**63), None, 5]})
    dsn = pg_cluster.create_database("hostile_copy")
    with Store(dsn) as st:
        with st.transaction():
            st.upsert("devices", frame)
            st.upsert("devices", frame.head(2))     # replaced by key, not added
        got = st.execute("SELECT device, name, is_router, hi FROM devices ORDER BY device").fetchall()
    assert got == [(d, n, None if r is None else int(r), h) for d, n, r, h in frame.iter_rows()]


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as s:      # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = CliRunner().invoke(main, ["learn", str(tmp_path / "none.pcap"), "--store",
                                  f"postgresql://pw:s3cret@127.0.0.1:{port}/plant"])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "s3cret" not in r.stderr and "postgresql://pw:***@" in r.stderr


def _console_views(st: Store) -> list:
    """What the console's screens read, for a fixed set of filters."""
    from plantwatch.core.views.console import (
        breach_detail,
        breaches,
        connections,
        device_detail,
        devices,
        filters,
        incidents,
        status,
    )

    out: list = [devices.device_list(st, filters.parse_device_filter(f))
                 for f in ("", "port:102", "port:502", "zone:ot role:plc", "score:>0.5", "new:yes", "siemens")]
    out += [connections.connections(st, filters.parse_conn_filter(f))
            for f in ("", f"device:{ATTACKER}", "proto:s7comm", "state:refused", "port:102")]
    out += [breaches.breaches(st), breaches.breaches(st, device=ATTACKER), breaches.breaches(st, text=("scan",))]
    inc = incidents.incidents(st)
    out += [inc] + [incidents.incident_detail(st, i.incident_id) for i in inc.rows]
    out += [device_detail.device_detail(st, d) for d in (ATTACKER, "10.20.20.10", "10.10.10.2")]
    out += [devices.activity(st), dataclasses.replace(status.status(st), version=0)]   # version: engine's own
    out += [breach_detail.breach_detail(st, b.breach_id) for b in breaches.breaches(st).rows[:10]]
    return out


@needs_demo
def test_the_console_queries_answer_the_same_on_both_engines(pg_demo: str, demo_store: Path) -> None:
    with Store(pg_demo, readonly=True) as pg, Store(demo_store, readonly=True) as lite:
        got, want = _console_views(pg), _console_views(lite)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w
