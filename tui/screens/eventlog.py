"""Event log: connections filtered by device, port, protocol, state, model or time, newest first,
a page at a time: `]`/`[` the next older/newer page, `}`/`{` the oldest/newest (keyset paging,
so the oldest row of a million is one index range away).

Times without a date (`since:13:00`) are on the day of the incident or breach the log was
opened from, else on the day of the newest row in view (the store's last day at first)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input

from plantwatch.core.views import queries
from plantwatch.core.views.queries import Connections, ConnFilter, FilterError, Page
from plantwatch.tui.screens.base import BaseScreen, FilterBarMixin, Message1
from plantwatch.tui.screens.device import CONN_COLS, CONN_DROP, conn_rows
from plantwatch.tui.widgets.table import SnapshotTable, row_key

LIMIT = 500


class EventLogScreen(FilterBarMixin, BaseScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("right_square_bracket", "page('older')", "Older", key_display="]"),
        Binding("left_square_bracket", "page('newer')", "Newer", key_display="["),
        Binding("right_curly_bracket", "page('oldest')", "Oldest", key_display="}", show=False),
        Binding("left_curly_bracket", "page('newest')", "Newest", key_display="{", show=False),
    ]

    def __init__(self, filter_text: str = "", day_ts: int | None = None) -> None:
        """`day_ts`: a packet time on the day that times without a date refer to (the incident
        or breach the log is opened from)."""
        super().__init__()
        self.filter_text = filter_text
        self.day_ts = day_ts
        self.filter = ConnFilter()
        self.page = Page()
        self.snapshot: Connections | None = None
        self.total = -1
        # filter -> (connection, its data_version, count): used by the count loader's worker only
        self._counts: dict[ConnFilter, tuple[object, int, int]] = {}

    def compose_body(self) -> ComposeResult:
        yield Input(value=self.filter_text, id="filter",
                    placeholder="filter (/): device:10.10.10.157 port:102 proto:s7comm state:failed "
                                "model:scan since:13:00")
        yield Message1(id="notice")
        table = SnapshotTable(CONN_COLS, drop=CONN_DROP, id="conns")
        table.switch_column("site", False)   # shown while the store holds more than one site
        yield table

    def on_mount(self) -> None:
        self.conn_loader = self.loader(self._query(), self._show)
        # the rows come first; counting every match (a million without a filter) follows
        self.count_loader = self.loader(self._count_query(), self._got_count)
        self._parse()
        self.query_one(SnapshotTable).focus()
        self.refresh_data()

    def reuse(self, filter_text: str = "", day_ts: int | None = None) -> None:
        """Show another filter in this (already mounted) screen: blank it, then load."""
        self.filter_text = filter_text
        self.day_ts = day_ts
        self.filter = ConnFilter()
        self.page = Page()
        self.snapshot = None
        if self.is_mounted:
            self.query_one("#filter", Input).value = filter_text
            self.query_one(SnapshotTable).show_rows([])
            self.query_one(SnapshotTable).focus()
            self._parse()
            self.refresh_data()   # the query starts now, while the screen is being switched

    def _parse(self) -> None:
        try:
            self.filter = queries.parse_conn_filter(self.filter_text, self._ref_ts())
            self.query_one("#notice", Message1).say("loading…")
        except FilterError as e:
            self.query_one("#notice", Message1).say(str(e), error=True)
        self.conn_loader.query = self._query()

    def _ref_ts(self) -> int | None:
        """The day times without a date are on: the incident's or breach's, else the newest
        row's in view, else the store's last."""
        if self.day_ts is not None:
            return self.day_ts
        if self.snapshot is not None and self.snapshot.rows:
            return self.snapshot.rows[0].first_ts
        st = self.app.store_status
        return st.last_ts if st else None

    def _query(self):
        flt, page = self.filter, self.page

        def load(store):
            snap = queries.connections(store, flt, LIMIT, count=False, page=page)
            many = len(queries.sites(store)) > 1
            return snap, *conn_rows(snap.rows, many), many
        return load

    def _count_query(self):
        flt, counts = self.filter, self._counts

        def count(store):
            # a filter counted before on this connection, with no commit since, is not
            # recounted (a million rows unfiltered): reopening the log costs one pragma
            version = store.execute("PRAGMA data_version").fetchone()[0]
            hit = counts.get(flt)
            if hit is not None and hit[0] is store and hit[1] == version:
                return flt, hit[2]
            total = queries.count_connections(store, flt)
            if len(counts) >= 64:
                counts.clear()
            counts[flt] = (store, version, total)
            return flt, total
        return count

    def refresh_data(self) -> None:
        self.conn_loader.request(self._query())

    def _show(self, result: tuple[Connections, list, dict, bool]) -> None:
        snap, rows, widths, many = result
        if snap.filter != self.filter or snap.page != self.page:
            return    # a load for the filter or page this screen showed before
        prev = self.snapshot
        known = prev is not None and prev.filter == snap.filter and self.total >= 0
        self.snapshot = snap
        self._many = many
        table = self.query_one(SnapshotTable)
        table.switch_column("site", many)
        table.show_rows(rows, widths)
        if snap.page.after is not None or snap.page.oldest:
            table.move_cursor(row=len(rows) - 1)     # the row next to the page it came from
        if snap.total >= 0:
            self.total = snap.total
        elif not known:
            self.total = -1               # shown as "counting" until the count comes
            self.count_loader.request(self._count_query())
        elif prev is not None and prev.page == snap.page:
            self.count_loader.request(self._count_query())   # the store changed: recount, old total meanwhile
        self._notice(self.total)

    def _got_count(self, result: tuple[ConnFilter, int]) -> None:
        flt, total = result
        if self.snapshot is not None and flt == self.filter == self.snapshot.filter:
            self.total = total
            self._notice(total)

    def _notice(self, total: int) -> None:
        """`total` < 0: still being counted."""
        snap = self.snapshot
        assert snap is not None
        desc = snap.filter.describe() or "all connections"
        if total == 0:
            self.query_one("#notice", Message1).say(f"no connections match: {desc}")
            return
        of = "… (counting)" if total < 0 else f"{total:,}"
        if not (snap.newer or snap.older):
            shown = f"{len(snap.rows):,}"
        elif not snap.newer:
            shown = f"newest {len(snap.rows)} of {of}"
        elif not snap.older:
            shown = f"oldest {len(snap.rows)} of {of}"
        else:
            first, last = snap.rows[0].first_ts, snap.rows[-1].first_ts
            shown = f"{len(snap.rows)} of {of} ({queries.fmt_ts(last)} to {queries.fmt_ts(first)})"
        keys = " — ] [ } { pages" if snap.older or snap.newer else ""
        self.query_one("#notice", Message1).say(f"{shown} connections — {desc} — Enter decodes a packet{keys}")

    def show_error(self, text: str) -> None:
        """A filter the store cannot answer (a device name no device has): in the filter bar."""
        self.query_one("#notice", Message1).say(text, error=True)
        self.query_one(SnapshotTable).show_rows([])

    def action_page(self, where: str) -> None:
        snap = self.snapshot
        if snap is None or snap.filter != self.filter:
            return
        if where == "older" and snap.older and snap.rows:
            self.page = Page(before=Connections.key(snap.rows[-1]))
        elif where == "newer" and snap.newer and snap.rows:
            self.page = Page(after=Connections.key(snap.rows[0]))
        elif where == "oldest" and snap.older:
            self.page = Page(oldest=True)
        elif where == "newest" and snap.newer:
            self.page = Page()
        else:
            return
        self.query_one(SnapshotTable).move_cursor(row=0)
        self.conn_loader.request(self._query())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self.filter = queries.parse_conn_filter(event.value, self._ref_ts())
        except FilterError as e:
            self.query_one("#notice", Message1).say(str(e), error=True)
            return
        self.page = Page()
        self.query_one(SnapshotTable).focus()
        self.conn_loader.request(self._query())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.row_key.value)

    def action_open(self) -> None:
        self._open(self.query_one(SnapshotTable).selected_key)

    def _open(self, key: str | None) -> None:
        if not key or self.snapshot is None:
            return
        many = getattr(self, "_many", False)
        row = next((r for r in self.snapshot.rows if row_key(r.session_id, r.site, many) == key), None)
        if row is not None:
            from plantwatch.tui.screens.packet import open_packet

            open_packet(self.app, row)
