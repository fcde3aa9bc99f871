"""Event log: connections filtered by device, port, protocol, state, model or time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input

from core import queries
from core.queries import Connections, ConnFilter, FilterError
from tui.screens.base import BaseScreen, Message1
from tui.screens.device import CONN_COLS, conn_cells
from tui.widgets.table import SnapshotTable

LIMIT = 500


class EventLogScreen(BaseScreen):
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
        try:
            self.filter = queries.parse_conn_filter(self.filter_text, self._ref_ts())
        except FilterError as e:
            self.query_one("#notice", Message1).say(str(e), error=True)
        self.conn_loader.query = self._query()
        self.query_one(SnapshotTable).focus()
        self.refresh_data()

    def _ref_ts(self) -> int | None:
        st = self.app.store_status
        return st.last_ts if st else None

    def _query(self):
        flt = self.filter

        def load(store):
            snap = queries.connections(store, flt, LIMIT)
            return snap, [(str(r.session_id), r, conn_cells(r)) for r in snap.rows]
        return load

    def refresh_data(self) -> None:
        self.conn_loader.request(self._query())

    def _show(self, result: tuple[Connections, list]) -> None:
        snap, rows = result
        self.snapshot = snap
        self.query_one(SnapshotTable).show_rows(rows)
        desc = snap.filter.describe() or "all connections"
        if snap.total == 0:
            self.query_one("#notice", Message1).say(f"no connections match: {desc}")
        else:
            shown = f"newest {len(snap.rows)} of {snap.total:,}" if snap.total > len(snap.rows) else f"{snap.total:,}"
            self.query_one("#notice", Message1).say(f"{shown} connections — {desc} — Enter decodes a packet")

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self.filter = queries.parse_conn_filter(event.value, self._ref_ts())
        except FilterError as e:
            self.query_one("#notice", Message1).say(str(e), error=True)
            return
        self.query_one(SnapshotTable).focus()
        self.conn_loader.request(self._query())

    def action_back(self) -> None:
        inp = self.query_one("#filter", Input)
        if inp.has_focus:
            self.query_one(SnapshotTable).focus()
        else:
            super().action_back()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.row_key.value)

    def action_open(self) -> None:
        self._open(self.query_one(SnapshotTable).selected_key)

    def _open(self, key: str | None) -> None:
        if not key or self.snapshot is None:
            return
        row = next((r for r in self.snapshot.rows if str(r.session_id) == key), None)
        if row is not None:
            from tui.screens.packet import open_packet

            open_packet(self.app, row)
