"""What makes the console fast must not change what it shows: the device list's cache, the port
filter's index probes (schema V3), counting connections apart from fetching them, and the table
that draws only the rows on screen. (Speed itself is measured by bench/console.py, never here.)"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from plantwatch.core.store.database import Store
from plantwatch.core.views import queries
from plantwatch.core.views.queries import ConnFilter, Series, parse_conn_filter, parse_device_filter
from plantwatch.tui.widgets.charts import SeriesChart
from plantwatch.tui.widgets.table import SnapshotTable
from tests.tui_support import ATTACKER, needs_demo

FILTERS = ("", "zone:ot role:plc", "port:102", "port:102 new:yes", "score:>0.3", "port:3389 10.10",
           "port:9")


@needs_demo
def test_device_list_cache_and_port_probes_match_a_plain_read(tmp_path: Path, demo_store: Path) -> None:
    copy = tmp_path / "demo.sqlite"
    shutil.copy(demo_store, copy)
    with Store(copy, readonly=True) as st:
        cache = queries.DeviceCache()
        for text in FILTERS:
            for sort in ("score", "address", "name"):
                for rev in (False, True):
                    flt = parse_device_filter(text)
                    plain = queries.device_list(st, flt, sort, rev)
                    assert queries.device_list(st, flt, sort, rev, None, cache) == plain, (text, sort)
        probed = {p: queries._devices_on_port(st, p) for p in (102, 502, 3389, 443, 9)}
    assert probed[102] and not probed[9]
    # the same devices as the pre-V3 query, which reads every session on the port (and also
    # returns addresses that are no device, e.g. scanned ones that never answered)
    with Store(copy) as st:
        st.execute("DROP INDEX sessions_server_port")
        st.execute("DROP INDEX sessions_client_port")
        devices = set(st.execute("SELECT site, hi, lo FROM devices").fetchall())
        for port, devs in probed.items():
            assert queries._devices_on_port(st, port) & devices == devs, port


@needs_demo
def test_device_cache_sees_a_commit(tmp_path: Path, demo_store: Path) -> None:
    copy = tmp_path / "demo.sqlite"
    shutil.copy(demo_store, copy)
    cache = queries.DeviceCache()
    with Store(copy, readonly=True) as reader, Store(copy) as writer:
        before = queries.device_list(reader, parse_device_filter("zone:ot"), cache=cache)
        with writer.transaction():
            writer.execute("UPDATE devices SET zone = 'Elsewhere', zone_kind = 'it' WHERE zone_kind = 'ot'")
        after = queries.device_list(reader, parse_device_filter("zone:ot"), cache=cache)
    assert before.rows and not after.rows


@needs_demo
def test_port_queries_keep_their_indexes(demo_store: Path) -> None:
    """The V3 indexes lead with the address, so a filter on the port alone keeps the index that
    also gives the event log its time order (checked on the plan, not on a clock)."""
    with Store(demo_store, readonly=True) as st:
        where, params = queries._conn_where(st, parse_conn_filter("port:102"))
        plan = " ".join(r[3] for r in st.execute(
            f"EXPLAIN QUERY PLAN SELECT session_id FROM sessions WHERE {' AND '.join(where)}"
            " ORDER BY first_ts DESC LIMIT 500", params))
        assert "sessions_port " in plan + " " and "sessions_server_port" not in plan


@needs_demo
def test_connections_counted_apart(demo_store: Path) -> None:
    with Store(demo_store, readonly=True) as st:
        for text in ("", "port:102", f"device:{ATTACKER} port:102", "state:failed", "port:9"):
            flt = parse_conn_filter(text)
            full = queries.connections(st, flt, 50)
            quick = queries.connections(st, flt, 50, count=False)
            assert quick.rows == full.rows
            assert queries.count_connections(st, flt) == full.total
            assert quick.total == (full.total if full.total < 50 else -1)


class TableApp(App):
    def __init__(self) -> None:
        super().__init__()
        self.built: list[int] = []
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield SnapshotTable([("n", "N", 6), ("word", "Word")], id="t")

    def cells(self, i: int) -> tuple:
        self.built.append(i)
        return (str(i), f"w{i}")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.selected.append(event.row_key.value)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.selected.append(f"header {event.column_key.value}")


def test_table_builds_only_drawn_rows_and_keeps_the_cursor() -> None:
    app = TableApp()

    async def main() -> None:
        async with app.run_test(size=(40, 12)) as pilot:
            table = app.query_one(SnapshotTable)
            table.focus()
            table.show_rows([(f"k{i}", i, lambda i=i: app.cells(i)) for i in range(5000)])
            await pilot.pause()
            assert table.row_count == 5000 and not table.populating
            assert 0 < len(set(app.built)) <= 250         # a screenful (and measuring), not 5,000
            await pilot.press("down", "down", "pagedown")
            row = table.cursor_row
            assert row > 2 and table.selected_key == f"k{row}"
            # a new snapshot in another order: the cursor stays on the same key
            table.show_rows([(f"k{i}", i, lambda i=i: app.cells(i)) for i in reversed(range(5000))])
            assert table.selected_key == f"k{row}" and table.cursor_row == 4999 - row
            await pilot.pause()
            assert table.get_cell(f"k{row}", "word").plain == f"w{row}"
            await pilot.press("enter")
            await pilot.pause()
            assert app.selected == [f"k{row}"]
            await pilot.press("end")
            assert table.selected_key == "k0"
            lines = [table.render_line(y).text for y in range(table.size.height)]
            assert lines[0].split() == ["N", "Word"] and "w0" in "".join(lines)
            # the mouse: a header sorts, a click moves the cursor, a second click opens
            await pilot.click(SnapshotTable, offset=(10, 0))
            await pilot.click(SnapshotTable, offset=(2, 2))
            top = int(table.scroll_offset.y)
            assert table.cursor_row == top + 1
            await pilot.click(SnapshotTable, offset=(2, 2))
            await pilot.pause()
            assert app.selected[1:] == ["header word", f"k{4999 - top - 1}"]

    asyncio.run(main())


@needs_demo
def test_failed_external_chart_counts_what_a_row_by_row_reading_counts(demo_store: Path) -> None:
    """The device screen classifies a device's failed peers in one array: the chart must count
    what classifying each failed connection on its own counts, bucket by bucket."""
    from plantwatch.core.decode import addr
    from plantwatch.core.flows.sessions import FAILED_STATES

    checked = 0
    with Store(demo_store, readonly=True) as st:
        for dev, hi, lo in st.execute("SELECT device, hi, lo FROM devices").fetchall():
            charts = {c.title: c for c in queries.device_detail(st, dev).charts}
            started = charts.get("connections started")
            if started is None:
                continue
            t0, width = started.ts[0], (started.ts[1] - started.ts[0]) if len(started.ts) > 1 else 1
            expect = [0.0] * len(started.ts)
            for first, shi, slo, state in st.execute(
                    "SELECT first_ts, server_hi, server_lo, state FROM sessions WHERE client_hi = ?"
                    " AND client_lo = ?", (hi, lo)):
                one = addr.classify(np.array([shi & (2**64 - 1)], dtype=np.uint64),
                                    np.array([slo & (2**64 - 1)], dtype=np.uint64))
                if state in FAILED_STATES and int(one[0]) == addr.KIND_GLOBAL:
                    expect[min((first - t0) // width, len(expect) - 1)] += 1
            failed = charts.get("failed external connections")
            assert (list(failed.values) if failed else [0.0] * len(expect)) == expect, dev
            checked += failed is not None
    assert checked, "no device of the demo failed to reach an external address: nothing was compared"


class ChartApp(App):
    def compose(self) -> ComposeResult:
        yield SeriesChart(id="c")


def test_chart_is_rebuilt_for_new_data_and_a_new_size_only() -> None:
    from textual_plotext import PlotextPlot

    app = ChartApp()
    builds: list[tuple[int, int]] = []
    real = PlotextPlot.render

    def counting(self):
        builds.append(tuple(self.size))
        return real(self)

    async def main() -> None:
        async with app.run_test(size=(60, 14)) as pilot:
            chart = app.query_one(SeriesChart)
            hour = 3_600_000_000_000
            chart.show(Series("a", (0, hour, 2 * hour), (1.0, 5.0, 2.0)))
            await pilot.pause()
            first = chart.render()
            n = len(builds)
            assert chart.render() is first and len(builds) == n        # same data, same size
            chart.show(Series("b", (0, hour, 2 * hour), (9.0, 0.0, 4.0)))
            second = chart.render()
            assert second is not first and "b (UTC" in second.plain and len(builds) == n + 1
            await pilot.resize_terminal(50, 14)
            await pilot.pause()
            assert chart.render() is not second and builds[-1][0] != builds[n][0]

    PlotextPlot.render = counting
    try:
        asyncio.run(main())
    finally:
        PlotextPlot.render = real


@needs_demo
def test_event_log_count_is_reused_until_a_commit(tmp_path: Path, demo_store: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from plantwatch.tui.screens.eventlog import EventLogScreen

    copy = tmp_path / "demo.sqlite"
    shutil.copy(demo_store, copy)
    counted: list[ConnFilter] = []
    real = queries.count_connections

    def counting(store: Store, flt: ConnFilter) -> int:
        counted.append(flt)
        return real(store, flt)

    monkeypatch.setattr(queries, "count_connections", counting)
    screen = EventLogScreen()
    with Store(copy, readonly=True) as reader, Store(copy) as writer:
        screen.filter = parse_conn_filter("port:102")
        count = screen._count_query()
        flt, first = count(reader)
        assert first == real(reader, flt) > 0 and count(reader) == (flt, first) and len(counted) == 1
        screen.filter = parse_conn_filter("")
        assert screen._count_query()(reader)[1] == real(reader, screen.filter) and len(counted) == 2
        with writer.transaction():
            writer.execute("DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM sessions"
                           " WHERE server_port = 102 LIMIT 3)")
        assert count(reader) == (flt, first - 3) and len(counted) == 3     # recounted after the commit
        with Store(copy, readonly=True) as other:      # another connection's versions are its own
            assert count(other) == (flt, first - 3) and len(counted) == 4
