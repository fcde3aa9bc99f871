"""Incidents (the analyst's list) and one incident: narrative, phases, timeline, devices."""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from plantwatch.core.views import queries
from plantwatch.core.views.queries import IncidentDetail, Incidents
from plantwatch.tui.screens.base import BaseScreen, Message1
from plantwatch.tui.screens.breaches import SHORT_STATES
from plantwatch.tui.screens.device import kv_text
from plantwatch.tui.screens.triage_keys import QUIET_STATE_KEYS, STATE_KEYS, TriageKeys
from plantwatch.tui.widgets.table import SnapshotTable, row_key
from plantwatch.tui.widgets.text import plain, score_text, when

LIST_COLS = [("score", "Score"), ("site", "Site"), ("state", "State"), ("title", "Incident"), ("device", "Device"),
             ("first", "Started"), ("phases", "Phases"), ("breaches", "Br")]
TIMELINE_COLS = [("time", "Time"), ("phase", "Phase"), ("model", "Model"), ("device", "Device"),
                 ("explanation", "Explanation")]


class IncidentsScreen(TriageKeys, BaseScreen):
    BINDINGS = [*STATE_KEYS]
    triage_kind = "incident"

    def compose_body(self) -> ComposeResult:
        yield Static(Text("Incidents", style="bold"), classes="title")
        yield Message1(id="notice")
        table = SnapshotTable(LIST_COLS, id="incidents")
        table.switch_column("site", False)   # shown while the store holds more than one site
        yield table

    def on_mount(self) -> None:
        self.snapshot: Incidents | None = None
        self._many = False
        self.inc_loader = self.loader(lambda store: (queries.incidents(store), len(queries.sites(store)) > 1),
                                      self._show)
        self.query_one(SnapshotTable).focus()
        self.refresh_data()

    def refresh_data(self) -> None:
        self.inc_loader.request()

    def _show(self, result: tuple[Incidents, bool]) -> None:
        snap, many = result
        self.snapshot, self._many = snap, many
        table = self.query_one(SnapshotTable)
        table.switch_column("site", many)
        table.show_rows([(row_key(r.incident_id, r.site, many), (
            score_text(r.score), plain(r.site), plain(SHORT_STATES.get(r.state, r.state)), plain(r.title, limit=70),
            plain(r.device), when(r.first_ts),
            plain(", ".join(p.name for p in r.phases), limit=60), plain(r.breaches)))
            for r in snap.rows])
        notice = self.query_one("#notice", Message1)
        if not snap.detection:
            notice.say("no incidents yet — still learning (detection has not run on this store)")
        elif not snap.rows:
            notice.say("no incidents: nothing has deviated enough to tell a story")
        else:
            gone = f"; {snap.dissolved} dissolved by triage" if snap.dissolved else ""
            notice.say(f"{len(snap.rows)} incident(s), highest score first{gone} — Enter opens one,"
                       " a/r/f/u: ack/resolved/false positive/undo")

    def _selected(self) -> queries.IncidentRow | None:
        key = self.query_one(SnapshotTable).selected_key
        if key is None or self.snapshot is None:
            return None
        return next((r for r in self.snapshot.rows if row_key(r.incident_id, r.site, self._many) == key), None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        r = self._selected()
        if r is not None:
            self.app.push_screen(IncidentScreen(r.incident_id, r.site if self._many else None))


class IncidentScreen(TriageKeys, BaseScreen):
    BINDINGS = [
        Binding("o", "device", "Main device"),
        Binding("e", "event_log", "Event log"),
        Binding("t", "at_time", "At its time"),
        Binding("v", "breach", "Breach", show=False),
        Binding("x", "export", "Export"),
        *QUIET_STATE_KEYS,
    ]
    triage_kind = "incident"

    def _selected(self) -> queries.IncidentRow | None:
        return self.detail.incident if self.detail else None

    def __init__(self, incident_id: int, site: str | None = None) -> None:
        """`site`: the incident's site (a console reading every site of a store)."""
        super().__init__()
        self.incident_id = incident_id
        self.site = site
        self.detail: IncidentDetail | None = None
        self.exporter = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Static(id="title", classes="title")
            yield Static(id="facts")
            yield Static(Text("Narrative", style="bold underline"), classes="section")
            yield Static(id="narrative")
            yield Static(Text("Phases", style="bold underline"), classes="section")
            yield Static(id="phases")
            yield Static(id="summaries")
            yield Static(Text("Timeline (Enter: open the device, v: the breach in full)", style="bold underline"),
                         classes="section")
            yield SnapshotTable(TIMELINE_COLS, id="timeline", classes="inline")

    def on_mount(self) -> None:
        iid, site = self.incident_id, self.site
        self.detail_loader = self.loader(
            lambda store: queries.incident_detail(store.for_site(site) if site else store, iid), self._show)
        self.query_one("#title", Static).update(plain("loading…"))
        self.refresh_data()

    def refresh_data(self) -> None:
        self.detail_loader.request()

    def _show(self, d: IncidentDetail | None) -> None:
        if d is None:
            self.query_one("#title", Static).update(plain("this incident is not in the store"))
            return
        self.detail = d
        inc = d.incident
        title = Text(end="")
        title.append_text(score_text(inc.score))
        title.append("  ")
        title.append_text(plain(inc.title, style="bold", limit=300))
        self.query_one("#title", Static).update(title)
        self.query_one("#facts", Static).update(kv_text([
            ("device", inc.device),
            ("devices", ", ".join(inc.devices[:8]) + (f" and {len(inc.devices) - 8} more" if len(inc.devices) > 8 else "")),
            ("from", f"{queries.fmt_ts(inc.first_ts)} to {queries.fmt_ts(inc.last_ts)}"),
            ("ATT&CK", ", ".join(inc.attack_ids) or "-"), ("breaches", str(inc.breaches)),
            ("state", inc.state + (f"; {inc.triage_note}" if inc.triage_note else ""))]))
        self.query_one("#narrative", Static).update(plain(inc.narrative or "-", limit=4000))
        ph = Text(end="")
        for i, p in enumerate(inc.phases):
            if i:
                ph.append("\n")
            ph.append(f"{i + 1}. ", style="bold")
            ph.append_text(plain(p.name, style="bold"))
            ph.append(f"  {queries.fmt_ts(p.first_ts)}  ")
            ph.append_text(plain(" ".join(p.attack_ids), style="cyan"))
            if p.models:
                ph.append("\n   ")
                ph.append_text(plain(", ".join(p.models), limit=300))
        self.query_one("#phases", Static).update(ph if inc.phases else plain("-"))
        summ = Text(end="")
        for title_s, rows in d.summaries:
            summ.append("\n")
            summ.append_text(plain(title_s, style="bold underline"))
            summ.append("\n")
            summ.append_text(kv_text(rows))
            summ.append("\n")
        self.query_one("#summaries", Static).update(summ)
        entries = inc.timeline or tuple(
            queries.TimelineEntry(b.first_ts, b.phase, b.model, b.device, b.explanation, b.breach_id)
            for b in d.breaches)
        self.query_one("#timeline", SnapshotTable).show_rows([(f"{i}", (
            when(e.ts), plain(e.phase), plain(e.model, limit=45), plain(e.device),
            plain(e.explanation, limit=200))) for i, e in enumerate(entries)])
        self._entries = entries

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is not None and self.detail is not None:
            e = self._entries[int(key)]
            if e.device:
                self.app.open_device(e.device, self.site)

    def action_breach(self) -> None:
        """The timeline entry under the cursor, in full (explanation, numbers, evidence)."""
        table = self.query_one("#timeline", SnapshotTable)
        key = table.selected_key
        if key is None or self.detail is None:
            return
        bid = self._entries[int(key)].breach_id
        if bid is not None:
            from plantwatch.tui.screens.breach import BreachScreen

            self.app.push_screen(BreachScreen(int(bid), self.site))

    def action_device(self) -> None:
        if self.detail and self.detail.incident.device:
            self.app.open_device(self.detail.incident.device, self.site)

    def action_export(self) -> None:
        """The incident's bundle (plantwatch export incident) into $PLANTWATCH_EXPORT_DIR, else the
        current directory, written off the UI thread."""
        from plantwatch.core.views.export.bundle import export_incident

        iid, site = self.incident_id, self.site
        out = Path(os.environ.get("PLANTWATCH_EXPORT_DIR") or Path.cwd()) / f"incident-{iid}"
        if self.exporter is None:
            self.exporter = self.loader(lambda store: export_incident(store.for_site(site) if site else store, iid, out),
                                        self._exported, persistent=False)
        elif self.exporter.running:
            return
        self.notify(f"exporting the incident to {out} ...", markup=False)
        self.exporter.request()

    def _exported(self, res) -> None:  # noqa: ANN001 - a BundleResult
        self.notify(f"exported to {res.out}: report.html, evidence.pcapng ({res.packets:,} packets), "
                    "incident.json, baselines.json, SHA256SUMS", markup=False, timeout=15)

    def action_event_log(self) -> None:
        if self.detail:
            inc = self.detail.incident
            flt = f"device:{inc.device}" if inc.device else ""
            if inc.first_ts:
                flt += f" since:{queries.fmt_ts(inc.first_ts).replace(' ', 'T')}"
            if inc.last_ts:
                flt += f" until:{queries.fmt_ts(inc.last_ts).replace(' ', 'T')}"
            if self.site:
                flt += f" site:{self.site}"
            self.app.open_event_log(flt.strip(), inc.first_ts)

    def action_at_time(self) -> None:
        """Every connection while the incident ran (not only its devices'): what else happened."""
        if self.detail:
            inc = self.detail.incident
            flt = " ".join(f"{k}:{queries.fmt_ts(v).replace(' ', 'T')}"
                           for k, v in (("since", inc.first_ts), ("until", inc.last_ts)) if v)
            if self.site:
                flt += f" site:{self.site}"
            self.app.open_event_log(flt, inc.first_ts)
