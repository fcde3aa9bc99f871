"""One breach: the full explanation, the numbers behind it, the baseline of the device that did
it, and its evidence (Enter opens the packet view on the cited packet)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from plantwatch.core.views import queries
from plantwatch.core.views.queries import BreachDetail
from plantwatch.tui.screens.base import BaseScreen
from plantwatch.tui.screens.device import kv_text
from plantwatch.tui.widgets.table import SnapshotTable
from plantwatch.tui.widgets.text import plain, score_text, when

EVIDENCE_COLS = [("frame", "Packet"), ("started", "Session start"), ("client", "Client"),
                 ("server", "Server"), ("proto", "Proto")]


class BreachScreen(BaseScreen):
    BINDINGS = [
        Binding("o", "device", "Device"),
        Binding("e", "event_log", "Evidence log"),
    ]

    def __init__(self, breach_id: int, site: str | None = None) -> None:
        """`site`: the breach's site (a console reading every site of a store)."""
        super().__init__()
        self.breach_id = breach_id
        self.site = site
        self.detail: BreachDetail | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Static(id="title", classes="title")
            yield Static(id="facts")
            yield Static(Text("Explanation", style="bold underline"), classes="section")
            yield Static(id="explanation")
            yield Static(Text("Numbers behind it", style="bold underline"), classes="section")
            yield Static(id="numbers")
            yield Static(id="baseline-title", classes="section")
            yield Static(id="baseline")
            yield Static(Text("Evidence (Enter: the packet)", style="bold underline"), classes="section")
            yield SnapshotTable(EVIDENCE_COLS, id="evidence", classes="inline")

    def on_mount(self) -> None:
        bid, site = self.breach_id, self.site
        self.detail_loader = self.loader(
            lambda store: queries.breach_detail(store.for_site(site) if site else store, bid), self._show)
        self.query_one("#title", Static).update(plain("loading…"))
        self.refresh_data()

    def refresh_data(self) -> None:
        self.detail_loader.request()

    def _show(self, d: BreachDetail | None) -> None:
        if d is None:
            self.query_one("#title", Static).update(plain("this breach is not in the store"))
            return
        self.detail = d
        b = d.breach
        title = Text(end="")
        title.append_text(score_text(b.score))
        title.append("  ")
        title.append_text(plain(b.model, style="bold"))
        title.append("  ")
        title.append_text(plain(b.device))
        self.query_one("#title", Static).update(title)
        self.query_one("#facts", Static).update(kv_text([
            ("model", b.model_id), ("phase", b.phase or "-"), ("ATT&CK", ", ".join(b.attack_ids) or "-"),
            ("from", f"{queries.fmt_ts(b.first_ts)} to {queries.fmt_ts(b.last_ts)}"),
            ("devices", ", ".join(b.devices) or "-"),
            ("importance", f"{b.importance:.1f} (-log10 of its probability under the baseline)"
             if b.importance is not None else "-"),
            ("incident", str(b.incident_id) if b.incident_id is not None else "none")]))
        self.query_one("#explanation", Static).update(plain(b.explanation or "-", limit=4000))
        self.query_one("#numbers", Static).update(kv_text(d.numbers) if d.numbers else plain("-"))
        self.query_one("#baseline-title", Static).update(
            plain(f"Baseline of {b.device or 'the device'}", style="bold underline"))
        self.query_one("#baseline", Static).update(kv_text(d.baseline) if d.baseline else plain("-"))
        self.query_one("#evidence", SnapshotTable).show_rows([(f"{i}", (
            plain(e.ref.frame if e.ref else "session"), when(e.ts), plain(e.client),
            plain(f"{e.server}:{e.server_port}" if e.server_port is not None else e.server),
            plain(e.protocol))) for i, e in enumerate(d.evidence)])
        self.query_one("#evidence", SnapshotTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.detail is None or event.row_key.value is None:
            return
        e = self.detail.evidence[int(event.row_key.value)]
        from plantwatch.tui.screens.packet import PacketScreen

        context = f"evidence of {self.detail.breach.model}"
        if e.ref is not None:
            self.app.push_screen(PacketScreen(e.ref, context, session_id=e.session_id,
                                              candidates=self.detail.breach.session_ids, site=self.site))
        elif e.session_ref is not None:
            self.app.push_screen(PacketScreen(e.session_ref, context, session_id=e.session_id, exact=False,
                                              site=self.site))
        else:
            self.notify("this evidence has no packet reference", severity="warning")

    def action_device(self) -> None:
        if self.detail and self.detail.breach.device:
            self.app.open_device(self.detail.breach.device, self.site)

    def action_event_log(self) -> None:
        if self.detail:
            b = self.detail.breach
            self.app.open_event_log((f"model:{b.model_id} device:{b.device}" if b.device else f"model:{b.model_id}")
                                    + (f" site:{self.site}" if self.site else ""), b.first_ts)
