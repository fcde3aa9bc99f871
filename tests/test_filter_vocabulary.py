"""One filter vocabulary (core/views/console/vocabulary.py): models by id, title or a word of
what they fire on; protocols as the connection list names them; devices by name or address; an
unknown value is an error, also in the event log's filter bar."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plantwatch.core.store.database import Store
from plantwatch.core.views import queries
from plantwatch.core.views.console.vocabulary import models_for
from plantwatch.core.views.queries import FilterError, parse_conn_filter, parse_device_filter
from plantwatch.tui.app import make_app
from plantwatch.tui.screens.eventlog import EventLogScreen
from plantwatch.tui.widgets.table import SnapshotTable
from tests.tui_support import needs_demo, settle, wait_until


def conns(st: Store, text: str) -> list[queries.ConnRow]:
    return list(queries.connections(st, parse_conn_filter(text), limit=100_000).rows)


def test_models_by_word_of_what_they_fire_on() -> None:
    assert set(models_for("scan")) == {"net.failed_internal", "ics.failed_connections"}
    assert models_for("ics.new_action") == ["ics.new_action"]
    assert "rdp.admin" in models_for("Admin RDP")
    for bad in ("nonsense", "", "zz"):
        with pytest.raises(FilterError):
            models_for(bad)


@needs_demo
def test_model_scan_finds_the_scans_connections(demo_store: Path) -> None:
    with Store(demo_store, readonly=True) as st:
        scan = conns(st, "model:scan")
        assert scan
        cited = {int(r[0]) for r in st.execute(
            "SELECT DISTINCT session_id FROM breach_sessions JOIN breaches USING (breach_id)"
            " WHERE model IN ('net.failed_internal', 'ics.failed_connections')")}
        assert {r.session_id for r in scan} == cited


@needs_demo
def test_rdp_inside_tls_is_listed_and_filtered_as_rdp(demo_store: Path) -> None:
    with Store(demo_store, readonly=True) as st:
        on_3389 = conns(st, "port:3389")
        assert on_3389 and {r.protocol for r in on_3389} == {"rdp"}
        rdp = conns(st, "proto:rdp")
        assert {r.session_id for r in on_3389} <= {r.session_id for r in rdp}
        assert all(r.protocol == "rdp" for r in rdp)
        tls = conns(st, "proto:tls")
        assert tls and all(r.protocol == "tls" for r in tls)
        assert not {r.session_id for r in tls} & {r.session_id for r in rdp}


@needs_demo
def test_devices_by_name(demo_store: Path) -> None:
    with Store(demo_store, readonly=True) as st:
        ip, name = st.execute("SELECT ip, name FROM devices WHERE LOWER(name) LIKE 'wincc01.%'").fetchone()
        by_ip = conns(st, f"device:{ip}")
        assert by_ip
        for text in ("wincc01", "WINCC01", name):
            assert conns(st, f"device:{text}") == by_ip
        with pytest.raises(FilterError, match="no device has that address or name"):
            conns(st, "device:nosuchhost")


def test_unknown_values_are_errors() -> None:
    for bad in ("state:weird", "proto:gopher", "model:nonsense"):
        with pytest.raises(FilterError):
            parse_conn_filter(bad)
    with pytest.raises(FilterError, match="unknown role"):
        parse_device_filter("role:boss")
    assert parse_conn_filter("state:failed").state == "failed"
    assert parse_device_filter("role:PLC").role == "plc"


@needs_demo
def test_event_log_shows_unknown_values_in_the_filter_bar(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("l")
            assert isinstance(app.screen, EventLogScreen)
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            notice = app.screen.query_one("#notice")
            for text, words in (("state:weird", "unknown state"), ("device:nosuchhost", "no device has"),
                                ("model:nonsense", "no model by that")):
                app.screen.query_one("#filter").value = text
                app.screen.query_one("#filter").focus()
                await pilot.press("enter")
                await wait_until(pilot, lambda w=words: w in notice.render().plain, 10, words)
                assert "error" in notice.classes
            app.screen.query_one("#filter").value = "device:wincc01 proto:rdp"
            app.screen.query_one("#filter").focus()
            await pilot.press("enter")
            await settle(pilot)
            assert table.row_count > 0
            assert all(r.protocol == "rdp" for r in app.screen.snapshot.rows)

    asyncio.run(main())


@needs_demo
def test_unknown_zone_is_an_error_and_role_prefixes_work(demo_store: Path) -> None:
    with Store(demo_store, readonly=True) as st:
        assert queries.device_list(st, parse_device_filter("zone:ot")).rows
        # the plant's station, and the attacker whose role is unverified (`engineering?`)
        assert {r.role for r in queries.device_list(st, parse_device_filter("role:eng")).rows} == {
            "engineering", "engineering?"}
        with pytest.raises(FilterError, match="no device is in that zone"):
            queries.device_list(st, parse_device_filter("zone:mars"))


@needs_demo
def test_devices_filter_bar_shows_an_unknown_zone(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            flt = app.screen.query_one("#filter")
            flt.value = "zone:mars"
            flt.focus()
            await pilot.press("enter")
            notice = app.screen.query_one("#notice")
            await wait_until(pilot, lambda: "no device is in that zone" in notice.render().plain, 10, "the error")
            assert "error" in notice.classes

    asyncio.run(main())


@needs_demo
def test_breach_log_filter_speaks_the_same_vocabulary(demo_store: Path) -> None:
    from plantwatch.tui.screens.breaches import BreachesScreen

    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("b")
            assert isinstance(app.screen, BreachesScreen)
            await settle(pilot)
            notice = app.screen.query_one("#notice")
            for text in ("scan", "model:scan"):
                app.screen.query_one("#filter").value = text
                app.screen.query_one("#filter").focus()
                await pilot.press("enter")
                await settle(pilot)
                assert {b.model_id for b in app.screen.snapshot.rows} == \
                    {"net.failed_internal", "ics.failed_connections"}
            app.screen.query_one("#filter").value = "nonsense"
            app.screen.query_one("#filter").focus()
            await pilot.press("enter")
            await settle(pilot)
            assert "no model by that id, title or word" in notice.render().plain
            assert "error" in notice.classes

    asyncio.run(main())


@needs_demo
def test_site_is_a_word_of_the_vocabulary(demo_store: Path) -> None:
    """site:NAME keeps one site's rows (tests/test_sites.py: a store of several); a site the store
    does not hold is an error, in the lists and in the filter bars."""
    with Store(demo_store, readonly=True, all_sites=True) as st:
        assert conns(st, "site:default port:102") == conns(st, "port:102")
        assert queries.device_list(st, parse_device_filter("site:default")).rows == queries.device_list(st).rows
        assert queries.breaches(st, site="default").total == queries.breaches(st).total
        for ask in (lambda: conns(st, "site:plant-z"), lambda: queries.breaches(st, site="plant-z"),
                    lambda: queries.device_list(st, parse_device_filter("site:plant-z"))):
            with pytest.raises(FilterError, match="site:plant-z: no such site in this store"):
                ask()
    from plantwatch.tui.screens.breaches import BreachesScreen

    async def main(key: str, screen: type) -> None:
        app = make_app(demo_store, source="demo store")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press(key)
            assert isinstance(app.screen, screen)
            await settle(pilot)
            notice = app.screen.query_one("#notice")
            app.screen.query_one("#filter").value = "site:plant-z"
            app.screen.query_one("#filter").focus()
            await pilot.press("enter")
            await wait_until(pilot, lambda: "no such site" in notice.render().plain, 10, "the error")
            assert "error" in notice.classes

    for key, screen in (("l", EventLogScreen), ("b", BreachesScreen)):
        asyncio.run(main(key, screen))
