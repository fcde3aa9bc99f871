"""Breaches: the model breach log, newest first, filterable by model."""

from __future__ import annotations

from functools import partial

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input

from plantwatch.core.views import queries
from plantwatch.core.views.console.filters import FilterError, parse_breach_filter, parse_site
from plantwatch.core.views.console.vocabulary import models_named
from plantwatch.core.views.queries import Breaches
from plantwatch.tui.screens.base import BaseScreen, FilterBarMixin, Message1
from plantwatch.tui.screens.triage_keys import BREACH_KEYS, TriageKeys
from plantwatch.tui.widgets.table import SnapshotTable, row_key
from plantwatch.tui.widgets.text import plain, score_text, shown_width, when

SHORT_STATES = {"new": "new", "acknowledged": "ack", "resolved": "resolved", "false positive": "false pos."}


def state_word(b: queries.BreachRow) -> str:
    """What the analyst decided: what triage did to it (accepted, suppressed, window), else its state."""
    return b.triage or SHORT_STATES.get(b.state, b.state)


def breach_cells(b: queries.BreachRow) -> tuple:
    return (when(b.first_ts), plain(b.site), score_text(b.score), plain(state_word(b)), plain(b.model, limit=50),
            plain(b.device), plain(b.explanation, limit=160))


COLS = [("time", "Time"), ("site", "Site"), ("score", "Score"), ("state", "State"), ("model", "Model"), ("device", "Device"),
        ("explanation", "Explanation")]


class BreachesScreen(TriageKeys, FilterBarMixin, BaseScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("e", "event_log", "Evidence"),
        Binding("o", "device", "Device"),
        Binding("p", "packet", "Packet"),
        Binding("v", "detail", "Detail"),
        *BREACH_KEYS,
    ]

    def __init__(self, model: str = "") -> None:
        super().__init__()
        self.model_filter = model
        self.snapshot: Breaches | None = None

    def compose_body(self) -> ComposeResult:
        yield Input(value=self.model_filter, id="filter",
                    placeholder="filter (/): part of a model name (RDP, ICS...), state:new|ack|resolved|fp|accepted|suppressed|window|all")
        yield Message1(id="notice")
        table = SnapshotTable(COLS, id="breaches")
        table.switch_column("site", False)   # shown while the store holds more than one site
        yield table

    def on_mount(self) -> None:
        self.breach_loader = self.loader(self._query(), self._show)
        self.breach_loader.on_error = self._filter_error
        self.query_one(SnapshotTable).focus()
        self.refresh_data()

    def reuse(self, model: str = "") -> None:
        """Shown again (b): the same filter keeps its rows while they reload, another one blanks."""
        if model != self.model_filter:
            self.model_filter = model
            self.snapshot = None
            if self.is_mounted:
                self.query_one("#filter", Input).value = model
                self.query_one(SnapshotTable).show_rows([])
                self.breach_loader.query = self._query()

    def _model_text(self) -> str:
        """The filter's model part (the loader reports a malformed filter itself)."""
        try:
            return parse_breach_filter(self.model_filter.strip())[0] or ""
        except FilterError:
            return ""

    def _query(self):
        text = self.model_filter.strip()

        def load(store):
            # a bad filter is the notice's error line, not an empty list
            model, state = parse_breach_filter(text)
            # rows are built when first drawn; the worker sizes the columns over all of them
            snap = queries.breaches(store, model=model, state=state, site=parse_site(text))
            many = len(queries.sites(store)) > 1
            rows = [(row_key(b.breach_id, b.site, many), b, partial(breach_cells, b)) for b in snap.rows]
            widths = {"time": 19, "score": 4, "state": shown_width(state_word(b) for b in snap.rows),
                      "site": shown_width(b.site for b in snap.rows),
                      "model": shown_width((b.model for b in snap.rows), 50),
                      "device": shown_width(b.device for b in snap.rows),
                      "explanation": shown_width((b.explanation for b in snap.rows), 160)}
            return snap, rows, widths, many
        return load

    def refresh_data(self) -> None:
        self.breach_loader.request(self._query())

    def _filter_error(self, text: str) -> None:
        self.query_one(SnapshotTable).show_rows([])
        self.query_one("#notice", Message1).say(text, error=True)

    def _show(self, result: tuple[Breaches, list, dict, bool]) -> None:
        snap, rows, widths, many = result
        self.snapshot = snap
        self._many = many
        table = self.query_one(SnapshotTable)
        table.switch_column("site", many)
        table.show_rows(rows, widths)
        notice = self.query_one("#notice", Message1)
        if not snap.detection:
            notice.say("no breaches yet — still learning (detection has not run on this store)")
        elif snap.total == 0 and self.model_filter.strip() and not models_named(self._model_text()):
            notice.say(f"{self.model_filter.strip()}: no model by that id, title or word "
                       "(e.g. ics.new_action, rdp, scan)", error=True)
        elif snap.total == 0:
            notice.say("no breaches" + (f" of a model matching {self.model_filter!r}" if self.model_filter else ""))
        else:
            notice.say(f"{snap.total} breaches, newest first — Enter: device, v: detail, e: evidence,"
                       " p: packet, a/r/f/u: ack/resolved/false positive/undo, A: accept as normal,"
                       " w: window")

    def _selected(self) -> queries.BreachRow | None:
        key = self.query_one(SnapshotTable).selected_key
        if key is None or self.snapshot is None:
            return None
        many = getattr(self, "_many", False)
        return next((b for b in self.snapshot.rows if row_key(b.breach_id, b.site, many) == key), None)

    def _site(self, b: queries.BreachRow) -> str | None:
        """The breach's site for the screens it opens, in a store holding several (else None)."""
        return b.site if getattr(self, "_many", False) else None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.model_filter = event.value
        self.query_one(SnapshotTable).focus()
        self.breach_loader.request(self._query())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_device()

    def action_device(self) -> None:
        b = self._selected()
        if b and b.device:
            self.app.open_device(b.device, self._site(b))

    def action_detail(self) -> None:
        b = self._selected()
        if b is not None:
            from plantwatch.tui.screens.breach import BreachScreen

            self.app.push_screen(BreachScreen(b.breach_id, self._site(b)))

    def action_packet(self) -> None:
        """The Wireshark decode of the breach's first evidence packet."""
        b = self._selected()
        if b is None:
            return
        if not b.refs:
            self.notify("this breach cites no packet", severity="warning")
            return
        from plantwatch.tui.screens.packet import PacketScreen

        self.app.push_screen(PacketScreen(b.refs[0], f"evidence of {b.model}", candidates=b.session_ids,
                                          site=self._site(b)))

    def action_event_log(self) -> None:
        b = self._selected()
        if b:
            site = self._site(b)
            self.app.open_event_log((f'model:{b.model_id} device:{b.device}' if b.device else f'model:{b.model_id}')
                                    + (f" site:{site}" if site else ""), b.first_ts)
