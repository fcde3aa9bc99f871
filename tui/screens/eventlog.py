"""Event log: connections filtered by device, port, protocol, state, model or time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input

from plantwatch.core.views import queries
from plantwatch.core.views.queries import Connections, ConnFilter, FilterError
from plantwatch.tui.screens.base import BaseScreen, FilterBarMixin, Message1
from plantwatch.tui.screens.device import CONN_COLS, conn_rows
from plantwatch.tui.widgets.table import SnapshotTable

LIMIT = 500


class EventLogScreen(FilterBarMixin, BaseScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
    ]

    def __init__(self, filter_text: str = "") -> None:
        super().__init__()
        self.filter_text = filter_text
        self.filter = ConnFilter()
        self.snapshot: Connections | None = None

    def compose_body(self) -> ComposeResult:
        yield Input(value=self.filter_text, id="filter",
                    placeholder="filter (/): device:10.10.10.157 port:102 proto:s7comm state:failed "
                                "model:scan since:13:00")
        yield Message1(id="notice")
        yield SnapshotTable(CONN_COLS, id="conns")

    def on_mount(self) -> None:
        self.conn_loader = self.loader(self._query(), self._show)
        # the rows come first; counting every match (a million without a filter) follows
        self.count_loader = self.loader(self._count_query(), self._got_count)
        self._parse()
        self.query_one(SnapshotTable).focus()
        self.refresh_data()

    def reuse(self, filter_text: str = "") -> None:
        """Show another filter in this (already mounted) screen: blank it, then load."""
        self.filter_text = filter_text
        self.filter = ConnFilter()
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
        st = self.app.store_status
        return st.last_ts if st else None

    def _query(self):
        flt = self.filter

        def load(store):
            snap = queries.connections(store, flt, LIMIT, count=False)
            return snap, *conn_rows(snap.rows)
        return load

    def _count_query(self):
        flt = self.filter
        return lambda store: (flt, queries.count_connections(store, flt))

    def refresh_data(self) -> None:
        self.conn_loader.request(self._query())

    def _show(self, result: tuple[Connections, list, dict]) -> None:
        snap, rows, widths = result
        if snap.filter != self.filter:
            return    # a load for the filter this screen showed before
        self.snapshot = snap
        self.query_one(SnapshotTable).show_rows(rows, widths)
        self._notice(snap.total)
        if snap.total < 0:
            self.count_loader.request(self._count_query())

    def _got_count(self, result: tuple[ConnFilter, int]) -> None:
        flt, total = result
        if self.snapshot is not None and flt == self.filter == self.snapshot.filter:
            self._notice(total)

    def _notice(self, total: int) -> None:
        """`total` < 0: still being counted."""
        snap = self.snapshot
        assert snap is not None
        desc = snap.filter.describe() or "all connections"
        if total == 0:
            self.query_one("#notice", Message1).say(f"no connections match: {desc}")
            return
        if total < 0:
            shown = f"newest {len(snap.rows)} of … (counting)"
        else:
            shown = f"newest {len(snap.rows)} of {total:,}" if total > len(snap.rows) else f"{total:,}"
        self.query_one("#notice", Message1).say(f"{shown} connections — {desc} — Enter decodes a packet")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self.filter = queries.parse_conn_filter(event.value, self._ref_ts())
        except FilterError as e:
            self.query_one("#notice", Message1).say(str(e), error=True)
            return
        self.query_one(SnapshotTable).focus()
        self.conn_loader.request(self._query())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.row_key.value)

    def action_open(self) -> None:
        self._open(self.query_one(SnapshotTable).selected_key)

    def _open(self, key: str | None) -> None:
        if not key or self.snapshot is None:
            return
        row = next((r for r in self.snapshot.rows if str(r.session_id) == key), None)
        if row is not None:
            from plantwatch.tui.screens.packet import open_packet

            open_packet(self.app, row)
