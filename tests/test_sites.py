"""One store, many sites (migration V9): two sites with the same private addresses stay two sets
of devices, baselines, breaches and incidents, each exactly what its captures give alone, in
SQLite and in PostgreSQL; a V8 store migrates with its rows intact; the console reads every site
(Site column, `site:` filter) or one."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from plantwatch.core.store import database, triage
from plantwatch.core.store.database import Store
from plantwatch.core.store.migrations import MIGRATIONS
from plantwatch.core.synth.mixed import generate
from plantwatch.core.views import queries
from plantwatch.core.views.queries import FilterError, parse_conn_filter, parse_device_filter
from plantwatch.tui.app import make_app
from plantwatch.tui.cli import main
from plantwatch.tui.screens.devices import DevicesScreen
from plantwatch.tui.widgets.table import SnapshotTable
from tests.tui_support import DEMO, needs_demo, settle, static_text, wait_until

LEARN, INCIDENT = DEMO / "learn.pcapng.gz", DEMO / "incident.pcapng.gz"
V9_TABLES = ("captures", "sessions", "session_ops", "devices", "baseline_devices", "baseline_meta",
             "breaches", "breach_sessions", "incidents", "device_scores", "breach_detected",
             "incidents_detected", "device_scores_detected", "device_identity", "identity_changes", "state")


def _analyze(store: str | Path, site: str | None, *captures: Path, learn: Path | None = None) -> dict:
    args = (["--site", site] if site else []) + ["analyze", *map(str, captures), "--store", str(store), "--json"]
    if learn is not None:
        args += ["--learn", str(learn)]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _by_path(report: dict) -> dict:
    """The report with capture ids (row ids of the whole store, so a second site's captures get
    other numbers) replaced by the capture's file name."""
    names = {c["capture_id"]: Path(c["path"]).name for c in report["captures"]}

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {("capture" if k == "capture_id" else k): (names.get(x, x) if k == "capture_id" else walk(x))
                    for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v
    out = walk(report)
    out.pop("store", None)
    return out


def _table(location: str | Path, site: str, sql: str) -> list[tuple]:
    with Store(location, readonly=True, site=site) as st:
        return sorted(st.execute(sql, (site,)).fetchall(), key=repr)


DETECTED = {
    "devices": "SELECT device, ip, role, zone, first_ts, last_ts, bytes_sent FROM devices WHERE site = ?",
    "baseline": "SELECT device, maturity, reasons, sessions, peers FROM baseline_devices WHERE site = ?",
    "breaches": "SELECT breach_id, model, device, devices, first_ts, score, incident_id, sessions"
                " FROM breaches WHERE site = ?",
    "incidents": "SELECT incident_id, title, device, devices, score, timeline FROM incidents WHERE site = ?",
    "scores": "SELECT device, ts, score FROM device_scores WHERE site = ?",
    "sessions": "SELECT session_id, state, client_port, server_port, first_ts FROM sessions WHERE site = ?",
}


def _same_as_alone(shared: str | Path, site: str, alone: str | Path) -> None:
    for name, sql in DETECTED.items():
        assert _table(shared, site, sql) == _table(alone, "default", sql), (site, name)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated plant whose addresses overlap the demo's 10.x networks."""
    path = tmp_path_factory.mktemp("plant") / "plant.pcapng"
    generate(path, 30_000, seed=7)
    return path


@pytest.fixture(scope="module")
def shared_sqlite(tmp_path_factory: pytest.TempPathFactory, plant: Path) -> dict[str, Any]:
    """The demo analysed alone; the demo under sites a and b and the plant under site c, into one store."""
    d = tmp_path_factory.mktemp("sites")
    out = {"alone": d / "alone.sqlite", "plant": d / "plant.sqlite", "shared": d / "shared.sqlite"}
    out["alone_json"] = _analyze(out["alone"], None, INCIDENT, learn=LEARN)
    out["plant_json"] = _analyze(out["plant"], None, plant)
    out["json"] = {s: _analyze(out["shared"], s, INCIDENT, learn=LEARN) for s in ("a", "b")}
    out["json"]["c"] = _analyze(out["shared"], "c", plant)
    return out


@needs_demo
def test_two_sites_with_the_same_addresses_give_each_what_it_gives_alone(shared_sqlite: dict) -> None:
    alone, shared = shared_sqlite["alone"], shared_sqlite["shared"]
    for site in ("a", "b"):
        assert _by_path(shared_sqlite["json"][site]) == _by_path(shared_sqlite["alone_json"])
        _same_as_alone(shared, site, alone)
    assert _by_path(shared_sqlite["json"]["c"]) == _by_path(shared_sqlite["plant_json"])
    _same_as_alone(shared, "c", shared_sqlite["plant"])
    demo_devices = {r[0] for r in _table(alone, "default", DETECTED["devices"])}
    plant_devices = {r[0] for r in _table(shared_sqlite["plant"], "default", DETECTED["devices"])}
    assert demo_devices & plant_devices, "the plant and the demo share no address: nothing is tested"
    with Store(shared, readonly=True) as st:
        n = dict(st.execute("SELECT site, COUNT(*) FROM devices GROUP BY site").fetchall())
        assert n == {"a": len(demo_devices), "b": len(demo_devices), "c": len(plant_devices)}
        # the same file analysed for two sites is a capture of each
        assert st.execute("SELECT COUNT(*) FROM captures WHERE path LIKE '%incident.pcapng.gz'").fetchone()[0] == 2


@needs_demo
def test_triage_at_one_site_leaves_the_other_alone(shared_sqlite: dict, tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    path.write_bytes(Path(shared_sqlite["shared"]).read_bytes())
    before_b = _table(path, "b", DETECTED["breaches"]), _table(path, "b", DETECTED["incidents"])
    with Store(path, site="a") as st:
        bid = st.execute("SELECT breach_id FROM breaches WHERE site = 'a' ORDER BY score DESC, breach_id"
                         " LIMIT 1").fetchone()[0]
        triage.set_state(st, "breach", bid, "acknowledged")
        _, rep = triage.accept(st, bid, "the plant's own engineering laptop")
        assert rep.accepted >= 1
        assert triage.state_of(st, "breach", bid) == "acknowledged"
    with Store(path, site="b") as st:
        assert triage.state_of(st, "breach", bid) == "new"      # the same breach id at site b
        assert triage.acceptances(st) == [] and triage.suppressed(st) == []
    assert (_table(path, "b", DETECTED["breaches"]), _table(path, "b", DETECTED["incidents"])) == before_b
    with Store(path, site="a", readonly=True) as st:
        assert {r.breach_id for r in queries.breaches(st, state="accepted").rows} >= {bid}
    with Store(path, site="b", readonly=True) as st:
        assert not queries.breaches(st, state="accepted").rows


def _v8_store(location: str, monkeypatch: pytest.MonkeyPatch, source: Path) -> dict[str, list[tuple]]:
    """A store made at schema V8 holding the rows of `source` (a V9 store of one site): V9 kept
    every table's columns in their order, so the rows go in as they are."""
    with monkeypatch.context() as m:
        m.setattr(database, "MIGRATIONS", MIGRATIONS[:8])
        with Store(location) as st:
            assert st.version == 8
            src = sqlite3.connect(source)
            rows = {}
            with st.transaction():
                for table in V9_TABLES:
                    rows[table] = src.execute(f"SELECT * FROM {table}").fetchall()
                    marks = ", ".join("?" * len(rows[table][0])) if rows[table] else ""
                    if rows[table]:
                        st.db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
            src.close()
    return rows


def _plain(row: tuple) -> tuple:
    """A row as bytes and numbers, whichever engine gave it: PostgreSQL's BYTEA comes as a
    memoryview, and a text SQLite kept in a BLOB column (state's triage.regroup) is bytes there."""
    return tuple(bytes(v) if isinstance(v, memoryview) else v.encode() if isinstance(v, str) else v for v in row)


def _migrates_intact(location: str, monkeypatch: pytest.MonkeyPatch, source: Path) -> None:
    rows = _v8_store(location, monkeypatch, source)
    with Store(location) as st:
        assert st.version == len(MIGRATIONS) == 9
        for table, before in rows.items():
            after = [_plain(r) for r in st.execute(f"SELECT * FROM {table}").fetchall()]
            assert sorted(after, key=repr) == sorted(map(_plain, before), key=repr), table
        # a second site's rows with the same keys now stand beside the first's
        st.execute("INSERT INTO devices (device, site) SELECT device, 'b' FROM devices WHERE site = 'default'")
        n = st.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
        assert n == 2 * len(rows["devices"])
        # ids the database assigns continue after the ones copied
        top = max(r[0] for r in rows["captures"])
        cur = st.execute("INSERT INTO captures (path, fingerprint, size, packets, status, site)"
                         " VALUES ('x', 'y', 0, 0, 'partial', 'b')")
        assert cur.lastrowid == top + 1


@needs_demo
def test_a_v8_sqlite_store_migrates_with_its_rows_intact(demo_store: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _migrates_intact(str(tmp_path / "v8.sqlite"), monkeypatch, demo_store)


@needs_demo
def test_a_v8_postgresql_store_migrates_with_its_rows_intact(pg_cluster, demo_store: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _migrates_intact(pg_cluster.create_database("v8_to_v9"), monkeypatch, demo_store)


@needs_demo
def test_two_sites_in_postgresql_give_each_what_it_gives_alone(pg_cluster, shared_sqlite: dict) -> None:
    dsn = pg_cluster.create_database("two_sites")
    for site in ("a", "b"):
        got = _analyze(dsn, site, INCIDENT, learn=LEARN)
        assert _by_path(got) == _by_path(shared_sqlite["alone_json"])
        _same_as_alone(dsn, site, shared_sqlite["alone"])
    with Store(dsn, readonly=True) as st:
        assert dict(st.execute("SELECT site, COUNT(*) FROM incidents GROUP BY site ORDER BY site").fetchall()) \
            == {"a": 1, "b": 1}


def test_site_is_a_term_of_every_filter() -> None:
    assert parse_device_filter("site:plant-a role:plc").site == "plant-a"
    assert parse_conn_filter("site:b port:102").site == "b"
    assert parse_conn_filter("site:b port:102").describe() == "site:b port:102"
    assert queries.parse_site("model:scan site:b") == "b"
    assert queries.parse_site("model:scan") is None
    with pytest.raises(FilterError, match="site"):
        parse_device_filter('site:""')


@needs_demo
def test_the_lists_read_every_site_or_one(shared_sqlite: dict) -> None:
    shared = shared_sqlite["shared"]
    with Store(shared, readonly=True, all_sites=True) as st:
        assert queries.sites(st) == ("a", "b", "c")
        every = queries.device_list(st).rows
        assert {r.site for r in every} == {"a", "b", "c"}
        only_b = queries.device_list(st, parse_device_filter("site:b")).rows
        with Store(shared, readonly=True, site="b") as one:
            assert [(r.device, r.score, r.breaches) for r in only_b] == \
                [(r.device, r.score, r.breaches) for r in queries.device_list(one).rows]
        assert {r.site for r in queries.connections(st, parse_conn_filter("site:a port:102")).rows} == {"a"}
        assert {r.site for r in queries.breaches(st, site="b").rows} == {"b"}
        for site in ("a", "b", "c"):
            with Store(shared, readonly=True, site=site) as one:
                alone = [(r.incident_id, r.score) for r in queries.incidents(one).rows]
            assert [(r.incident_id, r.score) for r in queries.incidents(st, site=site).rows] == alone
            assert sorted((r.incident_id, r.score) for r in queries.incidents(st).rows if r.site == site) \
                == sorted(alone)
        assert queries.breaches(st).total == 2 * queries.breaches(st, site="a").total \
            + queries.breaches(st, site="c").total
        with pytest.raises(FilterError, match="no such site"):
            queries.device_list(st, parse_device_filter("site:z"))


@needs_demo
def test_console_shows_every_site_and_filters_one(shared_sqlite: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANTWATCH_SITE", raising=False)
    shared = shared_sqlite["shared"]
    with Store(shared, readonly=True, site="b") as st:
        b_rows = [r.device for r in queries.device_list(st).rows]

    async def run() -> None:
        app = make_app(shared)
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, DevicesScreen)
            table = screen.query_one(SnapshotTable)
            await wait_until(pilot, lambda: table.row_count > 0)
            await settle(pilot)
            assert "site" in table.shown_columns
            shown = {str(table.get_cell(k, "site")) for k in table.keys}
            assert shown == {"a", "b", "c"}
            await pilot.press("slash")
            for ch in "site:b":
                await pilot.press(ch)
            await pilot.press("enter")
            await wait_until(pilot, lambda: {str(table.get_cell(k, "site")) for k in table.keys} == {"b"})
            await settle(pilot)
            # b's devices, in the order the list gives for site b alone
            assert [str(table.get_cell(k, "address")) for k in table.keys] == b_rows
            assert all(str(table.get_cell(k, "site")) == "b" for k in table.keys)
            # the first row opens b's device, not a's device at the same address
            await pilot.press("enter")
            await wait_until(pilot, lambda: getattr(app.screen, "detail", None) is not None)
            assert (app.screen.device, app.screen.site) == (b_rows[0], "b")
            assert static_text(app.screen, "#title").endswith("  site b")   # said on screen too
            # the breach log of every site, kept to b; a breach's evidence log stays at b
            await pilot.press("b")
            breaches = app.screen.query_one(SnapshotTable)
            await wait_until(pilot, lambda: breaches.row_count > 0)
            assert "site" in breaches.shown_columns
            assert {str(breaches.get_cell(k, "site")) for k in breaches.keys} == {"a", "b", "c"}
            app.screen.query_one("#filter").value = "site:b"
            app.screen.query_one("#filter").focus()
            await pilot.press("enter")
            await wait_until(pilot, lambda: {str(breaches.get_cell(k, "site")) for k in breaches.keys} == {"b"})
            await settle(pilot)
            await pilot.press("e")
            await wait_until(pilot, lambda: getattr(app.screen, "snapshot", None) is not None
                             and app.screen.snapshot.filter.site == "b")
            await settle(pilot)
            assert app.screen.snapshot.rows and {r.site for r in app.screen.snapshot.rows} == {"b"}
    asyncio.run(run())


@needs_demo
def test_console_of_one_site_hides_the_site_column(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANTWATCH_SITE", raising=False)

    async def run() -> None:
        app = make_app(demo_store)
        async with app.run_test(size=(160, 50)) as pilot:
            table = app.screen.query_one(SnapshotTable)
            await wait_until(pilot, lambda: table.row_count > 0)
            assert "site" not in table.shown_columns
    asyncio.run(run())
