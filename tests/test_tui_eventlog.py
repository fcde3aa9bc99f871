"""Pilot tests of the event log: keyset paging reaches every row, and times without a date
resolve to the day of the incident the log was opened from."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from plantwatch.core.store.database import Store
from plantwatch.core.views import queries
from plantwatch.tui.app import make_app
from plantwatch.tui.screens.eventlog import LIMIT, EventLogScreen
from plantwatch.tui.screens.incidents import IncidentScreen, IncidentsScreen
from plantwatch.tui.widgets.table import SnapshotTable
from tests.tui_support import ATTACKER, apply_filter, needs_demo, notice, settle, wait_until

SIZE = (120, 40)




@needs_demo
def test_paging_reaches_the_oldest_row(demo_store: Path) -> None:
    with Store(demo_store, readonly=True) as st:
        every = [int(r[0]) for r in st.execute(
            "SELECT session_id FROM sessions ORDER BY first_ts DESC, session_id DESC")]
    assert len(every) > 3 * LIMIT
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("l")
            assert isinstance(app.screen, EventLogScreen)
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert table.row_count == LIMIT
            await wait_until(pilot, lambda: f"newest {LIMIT} of {len(every):,}" in notice(app.screen),
                             10, "the count")
            seen = list(table.keys)
            while app.screen.snapshot.older:                   # ] page by page to the end
                await pilot.press("right_square_bracket")
                await settle(pilot)
                seen += table.keys
            assert [int(k) for k in seen] == every              # every row once, in order
            assert f"oldest {len(every) % LIMIT or LIMIT} of {len(every):,}" in notice(app.screen)
            await pilot.press("left_curly_bracket")            # { newest
            await settle(pilot)
            assert [int(k) for k in table.keys] == every[:LIMIT]
            await pilot.press("right_curly_bracket")           # } oldest at once
            await settle(pilot)
            assert [int(k) for k in table.keys] == every[-LIMIT:]
            assert table.selected_key == str(every[-1])         # the cursor on the oldest row
            await pilot.press("left_square_bracket")           # [ one page newer
            await settle(pilot)
            assert [int(k) for k in table.keys] == every[-2 * LIMIT:-LIMIT]

    asyncio.run(main())


@needs_demo
def test_time_of_day_resolves_to_the_incidents_day(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("i")
            assert isinstance(app.screen, IncidentsScreen)
            await settle(pilot)
            await pilot.press("enter")
            assert isinstance(app.screen, IncidentScreen)
            await settle(pilot)
            inc = app.screen.detail.incident
            start = datetime.fromtimestamp(inc.first_ts / 1e9, tz=UTC)
            last_day = datetime.fromtimestamp(app.store_status.last_ts / 1e9, tz=UTC).date()
            assert start.date() != last_day                      # the capture's last day is another
            await pilot.press("t")                              # the incident's time in the event log
            assert isinstance(app.screen, EventLogScreen)
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert table.row_count > 0
            rows = app.screen.snapshot.rows
            assert all(r.last_ts >= inc.first_ts and r.first_ts <= inc.last_ts for r in rows)
            hhmm = start.strftime("%H:%M")
            end = datetime.fromtimestamp(inc.last_ts / 1e9, tz=UTC).replace(second=0) \
                .strftime("%H:%M")
            await apply_filter(pilot, f"device:{ATTACKER} since:{hhmm} until:{end}")
            rows = app.screen.snapshot.rows
            assert rows, notice(app.screen)
            assert {datetime.fromtimestamp(r.first_ts / 1e9, tz=UTC).date() for r in rows} == {start.date()}
            assert f"since:{start.strftime('%Y-%m-%d')} {hhmm}" in notice(app.screen)
            assert all(ATTACKER in (r.client, r.server) for r in rows)

    asyncio.run(main())


@needs_demo
def test_pages_do_not_overlap_with_a_filter(demo_store: Path) -> None:
    with Store(demo_store, readonly=True) as st:
        flt = queries.parse_conn_filter("port:102")
        total = queries.count_connections(st, flt)
        seen: list[int] = []
        page = queries.Page()
        while True:
            snap = queries.connections(st, flt, 40, count=False, page=page)
            seen += [r.session_id for r in snap.rows]
            if not snap.older:
                break
            page = queries.Page(before=snap.key(snap.rows[-1]))
        assert len(seen) == len(set(seen)) == total
        oldest = queries.connections(st, flt, 40, count=False, page=queries.Page(oldest=True))
        assert [r.session_id for r in oldest.rows] == seen[-40:]
        assert oldest.newer and not oldest.older
