"""Device: identity, zone and role, learning state, breaches, charts, peers, operations, connections."""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.views import queries
from plantwatch.core.views.queries import DeviceDetail
from plantwatch.tui.screens.base import BaseScreen, Message1
from plantwatch.tui.widgets.charts import SeriesChart
from plantwatch.tui.widgets.table import SnapshotTable, row_key
from plantwatch.tui.widgets.text import human_bytes, plain, score_text, shown_width, when

PEER_COLS = [("dir", "Dir"), ("peer", "Peer"), ("port", "Port"), ("proto", "Protocol"),
             ("sessions", "Sessions"), ("failed", "Failed"), ("bytes", "Bytes"), ("last", "Last")]
OP_COLS = [("dir", "Dir"), ("cls", "Class"), ("proto", "Protocol"), ("name", "Operation"),
           ("count", "Count"), ("peers", "Peers")]
CONN_COLS = [("time", "Time"), ("site", "Site"), ("client", "Client"), ("server", "Server"), ("proto", "Protocol"),
             ("state", "State"), ("pkts", "Pkts"), ("bytes", "Bytes"), ("facts", "Facts")]
CONN_DROP = ("pkts", "bytes", "facts")      # first to go on a narrow terminal
CHART_COLORS = ("blue", "cyan", "green")
BREACHES_SHOWN = 8


def conn_cells(r: queries.ConnRow) -> tuple:
    return (when(r.first_ts), plain(r.site), plain(f"{r.client}:{r.client_port}" if r.client_port is not None else r.client),
            plain(f"{r.server}:{r.server_port}" if r.server_port is not None else r.server),
            plain(r.protocol or r.transport), plain(r.state), plain(r.packets),
            plain(human_bytes(r.bytes_c2s + r.bytes_s2c)), plain(r.facts, limit=80))


def conn_rows(rows: tuple[queries.ConnRow, ...], many_sites: bool = False) -> tuple[list[tuple], dict[str, int]]:
    """Table rows of connections, cells built when first drawn, and the widths of their columns
    over every row (cheap: one string per cell, no Text), so a worker can prepare both.
    `many_sites`: the store holds several sites (session ids repeat across them)."""
    out = [(row_key(r.session_id, r.site, many_sites), r, partial(conn_cells, r)) for r in rows]
    widths = {
        "time": 19,
        "site": shown_width(r.site for r in rows),
        "client": shown_width(f"{r.client}:{r.client_port}" if r.client_port is not None else r.client
                              for r in rows),
        "server": shown_width(f"{r.server}:{r.server_port}" if r.server_port is not None else r.server
                              for r in rows),
        "proto": shown_width(r.protocol or r.transport for r in rows),
        "state": shown_width(r.state for r in rows),
        "pkts": shown_width(r.packets for r in rows),
        "bytes": shown_width(human_bytes(r.bytes_c2s + r.bytes_s2c) for r in rows),
        "facts": shown_width((r.facts for r in rows), 80),
    }
    return out, widths


def kv_text(pairs, width: int = 12) -> Text:
    t = Text(end="")
    for i, (k, v) in enumerate(pairs):
        if i:
            t.append("\n")
        t.append(f"{k:>{width}}  ", style="bold")
        t.append_text(plain(v, limit=300))
    return t


def _frames(first_ref: int, last_ref: int, seen: int) -> str:
    a, b = PacketRef.unpack(first_ref), PacketRef.unpack(last_ref)
    one = f"capture {a.capture_id} frame {a.frame}"
    if first_ref == last_ref:
        return one
    last = f"frame {b.frame}" if a.capture_id == b.capture_id else f"capture {b.capture_id} frame {b.frame}"
    return f"{one} … {last}, {seen} answers"


def wire_identity_text(d: DeviceDetail) -> Text:
    """Identity stated on the wire, per component, with the frames that prove each value; the
    CPE names; the advisories that match."""
    t = Text("Identity from the wire", style="bold underline", end="")
    comps: dict[str, list] = {}
    for a in d.identity:
        comps.setdefault(a.component, []).append(a)
    for comp, attrs in comps.items():
        if comp:
            t.append("\n")
            t.append_text(plain(comp, style="bold"))
        for a in attrs:
            t.append(f"\n{a.attribute:>18}  ", style="bold")
            t.append_text(plain(a.value, limit=80))
            t.append(f"  {a.source}, {_frames(a.first_ref, a.last_ref, a.seen)}", style="dim")
    for comp, names in d.cpes:
        for n in names:
            t.append(f"\n{'CPE':>18}  ", style="bold")
            t.append_text(plain(n + (f"  ({comp})" if comp else ""), limit=120))
    for v in d.vulns:
        t.append(f"\n{v.cve:>18}  ", style="bold red")
        t.append(f"CVSS {v.cvss:.1f}  " if v.cvss is not None else "CVSS -  ")
        t.append_text(plain(f"{v.advisory_id}: {v.product} ({v.versions})"
                            + (f", firmware {v.firmware}" if v.firmware else "")
                            + (f" [{v.component}]" if v.component else ""), limit=200))
    return t


class DeviceScreen(BaseScreen):
    BINDINGS = [
        Binding("e", "event_log", "Event log"),
        Binding("c", "focus_connections", "Connections"),
        Binding("p", "focus_peers", "Peers"),
    ]

    def __init__(self, device: str, site: str | None = None) -> None:
        super().__init__()
        self.device = device
        self.site = site          # None: the store's own site (a console kept to one site)
        self.detail: DeviceDetail | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Static(id="title", classes="title")
            yield Static(id="identity")
            yield Static(id="wire", classes="section")
            yield Static(id="learning")
            yield Static(Text("Breaches", style="bold underline"), classes="section")
            yield Static(id="breaches")
            yield SeriesChart(id="chart0")
            yield SeriesChart(id="chart1")
            yield SeriesChart(id="chart2")
            yield Static(Text("Peers (Enter: event log for that peer and port)", style="bold underline"),
                         classes="section")
            yield SnapshotTable(PEER_COLS, id="peers", classes="inline")
            yield Static(Text("ICS operations by class", style="bold underline"), classes="section")
            yield Message1(id="ops-empty")
            yield SnapshotTable(OP_COLS, id="ops", classes="inline")
            yield Static(Text("Connections, newest first (Enter: decode the first packet)",
                              style="bold underline"), classes="section")
            conns = SnapshotTable(CONN_COLS, drop=CONN_DROP, id="conns", classes="inline")
            conns.switch_column("site", False)   # one device's connections are at its site
            yield conns

    def on_mount(self) -> None:
        self.detail_loader = self.loader(self._query(), self._show)
        self._blank()
        self.refresh_data()   # start the query now, while the screen is still being laid out

    def reuse(self, device: str, site: str | None = None) -> None:
        """Show another device in this (already mounted) screen: blank it, then load."""
        self.device, self.site = device, site
        self.detail = None
        if self.is_mounted:
            self.refresh_data()   # the query starts now, while the screen is being switched
            self._blank()
            self.query_one("#body", VerticalScroll).scroll_home(animate=False)

    def _blank(self) -> None:
        self.query_one("#title", Static).update(plain(f"{self.device} — loading…"))
        for sel in ("#identity", "#learning", "#breaches"):
            self.query_one(sel, Static).update("")
        self.query_one("#wire", Static).display = False
        for i in range(3):
            self.query_one(f"#chart{i}").display = False
        self.query_one("#ops-empty", Message1).say("")
        for sel in ("#peers", "#ops", "#conns"):
            self.query_one(sel, SnapshotTable).show_rows([])

    def _query(self):
        dev, site = self.device, self.site

        def load(store):
            d = queries.device_detail(store.for_site(site) if site else store, dev)
            return dev, d, (conn_rows(d.connections.rows) if d is not None else ([], {}))
        return load

    def refresh_data(self) -> None:
        self.detail_loader.request(self._query())

    def _show(self, result: tuple[str, DeviceDetail | None, tuple[list, dict]]) -> None:
        dev, d, (conns, conn_widths) = result
        if dev != self.device:
            return    # a load for the device this screen showed before
        if d is None:
            self.query_one("#title", Static).update(plain(f"{self.device}: not in the store"))
            return
        self.detail = d
        name = dict(d.fields).get("name", "-")
        title = Text(end="")
        title.append_text(plain(d.ip, style="bold"))
        title.append("  ")
        title.append_text(plain(name.split(" (from")[0], style="bold"))
        title.append(f"  {d.role}  ", style="")
        title.append(f"[{d.learning}]", style="bold yellow" if d.learning == "new" else "")
        if self.site:   # a store of several sites: whose 10.0.0.5 this is
            title.append("  site ")
            title.append_text(plain(self.site, style="bold"))
        self.query_one("#title", Static).update(title)
        self.query_one("#identity", Static).update(kv_text(d.fields))
        wire = self.query_one("#wire", Static)
        wire.display = bool(d.identity)
        wire.update(wire_identity_text(d) if d.identity else "")
        learn = [("learning", d.learning)] + [("", r) for r in d.learning_reasons] + \
            [("role", d.role)] + [("", r) for r in d.role_reasons]
        self.query_one("#learning", Static).update(kv_text(learn))
        self.query_one("#breaches", Static).update(self._breaches_text(d))
        for i in range(3):
            chart = self.query_one(f"#chart{i}", SeriesChart)
            if i < len(d.charts):
                chart.display = True
                chart.show(d.charts[i], CHART_COLORS[i])
            else:
                chart.display = False
        self.query_one("#peers", SnapshotTable).show_rows([
            (f"{p.direction}|{p.address}|{p.port}|{p.protocol}", (
                plain("→" if p.direction == "out" else "←"), plain(p.address), plain(p.port if p.port is not None else "-"),
                plain(p.protocol), plain(p.sessions), plain(p.failed or ""), plain(human_bytes(p.bytes)),
                when(p.last_ts))) for p in d.peers])
        self.query_one("#ops-empty", Message1).say("" if d.ops else "no ICS operations")
        self.query_one("#ops", SnapshotTable).display = bool(d.ops)
        self.query_one("#ops", SnapshotTable).show_rows([
            (f"{o.direction}|{o.cls}|{o.protocol}|{o.name}", (
                plain(o.direction), plain(o.cls, style="bold red" if o.cls in ("ACTION", "REPROGRAM") else ""),
                plain(o.protocol), plain(o.name, limit=40), plain(o.count), plain(o.peers)))
            for o in d.ops])
        self.query_one("#conns", SnapshotTable).show_rows(conns, conn_widths)

    def _breaches_text(self, d: DeviceDetail) -> Text:
        if not d.breaches:
            st = self.app.store_status
            if st is None or not st.detection:
                return Text("no breaches yet — still learning (detection has not run on this store)",
                            style="dim", end="")
            return Text("no breaches for this device", style="dim", end="")
        t = Text(end="")
        for i, b in enumerate(d.breaches[:BREACHES_SHOWN]):
            if i:
                t.append("\n")
            t.append_text(score_text(b.score))
            t.append("  ")
            t.append_text(when(b.first_ts))
            t.append("  ")
            t.append_text(plain(b.model, style="bold"))
            if b.triage or b.state != "new":   # the analyst's decision, when there is one
                t.append_text(plain(f"  ({b.triage or b.state}{': ' + b.triage_by if b.triage_by else ''})",
                                    style="dim", limit=120))
            t.append("\n      ")
            t.append_text(plain(b.explanation, limit=400))
        if len(d.breaches) > BREACHES_SHOWN:
            t.append(f"\n… {len(d.breaches) - BREACHES_SHOWN} more, older (b: the breach log)", style="dim")
        return t

    # --- actions ---
    def action_event_log(self) -> None:
        ip = self.detail.ip if self.detail else self.device
        self.app.open_event_log(f"device:{ip}" + (f" site:{self.site}" if self.site else ""))

    def action_focus_connections(self) -> None:
        self.query_one("#conns", SnapshotTable).focus()

    def action_focus_peers(self) -> None:
        self.query_one("#peers", SnapshotTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table = event.data_table
        key = event.row_key.value
        if table.id == "peers" and key:
            _, _peer, port, _proto = key.split("|", 3)
            ip = self.detail.ip if self.detail else self.device
            self.app.open_event_log(f"device:{ip}" + (f" port:{port}" if port != "None" else "")
                                    + (f" site:{self.site}" if self.site else ""))
        elif table.id == "conns" and key and self.detail:
            row = next((r for r in self.detail.connections.rows if str(r.session_id) == key), None)
            if row is not None:
                from plantwatch.tui.screens.packet import open_packet

                open_packet(self.app, row)
