"""Packet: the packet that proves the point, decoded by Wireshark (pyshark in a worker thread),
its bytes as hex and ASCII, and its session's ICS operations ("follow"); n/p step through the
session's packets.

The session is cut out of its capture once (core/views/packet_cut.py) into a small temporary
pcapng that tshark dissects quickly; the file is removed when the screen goes.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static, Tree

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.views import queries
from plantwatch.core.views.dissect import DissectError, Dissection, Node, dissect
from plantwatch.core.views.hexdump import hex_lines
from plantwatch.core.views.packet_cut import (
    CutError,
    CutPacket,
    SessionCut,
    cut_packet,
    cut_session,
)
from plantwatch.tui.screens.base import BaseScreen, Message1
from plantwatch.tui.widgets.table import SnapshotTable
from plantwatch.tui.widgets.text import plain, when

FOLLOW_COLS = [("frame", "Frame"), ("dir", "Dir"), ("op", "Operation"), ("cls", "Class")]


def open_packet(app: App, row: queries.ConnRow) -> None:
    """A connection's packet view, opened at its first packet carrying an operation or data."""
    if row.capture_id is None or row.frame is None:
        app.notify("this connection has no packet reference", severity="warning")
        return
    app.push_screen(PacketScreen(PacketRef(int(row.capture_id), int(row.frame)),
                                 f"{row.client} → {row.server}:{row.server_port} {row.protocol or row.transport}",
                                 session_id=row.session_id, exact=False, site=row.site or None))


class PacketScreen(BaseScreen):
    BINDINGS = [
        Binding("n", "next_packet", "Next pkt"),
        Binding("p", "prev_packet", "Prev pkt"),
        Binding("f", "follow", "Follow"),
        Binding("h", "hex", "Hex"),
    ]

    def __init__(self, ref: PacketRef, context: str = "", *, session_id: int | None = None,
                 candidates: Sequence[int] = (), exact: bool = True, site: str | None = None) -> None:
        """`ref` is the packet to show (exact) or, with exact=False, the session's first packet:
        the view then opens at the session's first operation or application data. `site`: the
        session's site (a console reading every site of a store)."""
        super().__init__()
        self.site = site
        self.ref = ref
        self.capture_id = ref.capture_id
        self.frame = ref.frame
        self.context = context
        self.session_id = session_id
        self.candidates = tuple(candidates)
        self.exact = exact
        self.cut: SessionCut | None = None
        self.index = 0
        self.dissection: Dissection | None = None
        self.problem: str | None = None
        self._decoded: dict[int, Dissection] = {}
        self._closed = False

    def compose_body(self) -> ComposeResult:
        yield Static(plain(f"packet {self.frame} of capture {self.capture_id}  {self.context}"),
                     id="title", classes="title")
        yield Message1(id="notice")
        yield Tree(plain("decode"), id="tree")
        with VerticalScroll(id="hexpane"):
            yield Static(id="hex")
        yield SnapshotTable(FOLLOW_COLS, id="follow", classes="inline")

    def on_mount(self) -> None:
        ref, sid, candidates, exact, site = self.ref, self.session_id, self.candidates, self.exact, self.site

        def work(store) -> tuple:
            store = store.for_site(site) if site else store
            try:
                session = sid if sid is not None else queries.session_of_ref(store, ref, candidates)
                cut = cut_session(store, session, ref) if session is not None else cut_packet(store, ref)
            except CutError as e:
                return None, 0, None, str(e)
            if self._closed:
                cut.remove()
                return None, 0, None, "closed"
            at = cut.index_of(ref) if exact else None
            index = cut.first_data() if at is None else at
            return cut, index, *self._decode(cut, index)

        self.query_one("#notice", Message1).say("cutting the session out of its capture…")
        self.query_one(Tree).display = False
        self.query_one("#hexpane").display = False
        self.query_one("#follow").display = False
        self.cut_loader = self.loader(work, self._got_cut, persistent=False)
        self.decode_loader = self.loader(lambda store: None, self._got_decode, persistent=False)
        self.cut_loader.request()

    @staticmethod
    def _decode(cut: SessionCut, index: int) -> tuple[Dissection | None, str | None]:
        p = cut.packets[index]
        try:
            return dissect(cut.pcap, index + 1, shown_frame=p.frame, source=cut.source), None
        except DissectError as e:
            return None, str(e)

    def on_unmount(self) -> None:
        self._closed = True
        if self.cut is not None:
            self.cut.remove()
        super().on_unmount()

    # --- results ---
    def _got_cut(self, result: tuple) -> None:
        cut, index, dis, problem = result
        if cut is None:
            self._problem(problem)
            return
        self.cut = cut
        self.query_one("#follow", SnapshotTable).show_rows([(f"{i}", (
            plain(op.frame), plain(op.direction), plain(op.name, limit=60), plain(op.cls)))
            for i, op in enumerate(cut.ops)])
        self.query_one("#follow").display = bool(cut.ops)
        self._show_packet(index, dis, problem)

    def _got_decode(self, result: tuple) -> None:
        index, dis, problem = result
        if dis is not None:
            self._decoded[index] = dis
        if index == self.index:
            self._show_packet(index, dis, problem)

    def _problem(self, problem: str | None) -> None:
        self.problem = problem or "the packet cannot be decoded"
        self.query_one("#notice", Message1).say(self.problem, error=True)

    def _show_packet(self, index: int, dis: Dissection | None, problem: str | None) -> None:
        cut = self.cut
        assert cut is not None
        self.index = index
        pkt = cut.packets[index]
        self.capture_id, self.frame = pkt.capture_id, pkt.frame
        self._title(pkt)
        self.query_one("#hex", Static).update(Text("\n".join(hex_lines(pkt.data)), end=""))
        self.query_one("#hexpane").display = True
        ops = [i for i, op in enumerate(cut.ops) if op.frame == pkt.frame]
        if ops:
            self.query_one("#follow", SnapshotTable).move_cursor(row=ops[0])
        self.problem = problem
        self.dissection = dis
        tree = self.query_one(Tree)
        if problem is not None:
            tree.display = False
            self._problem(problem)
            return
        if dis is None:
            return
        self.query_one("#notice", Message1).say("")
        tree.clear()
        tree.root.set_label(plain(dis.summary))
        for layer in dis.layers:
            self._add(tree.root, layer, expand=False)
        tree.root.expand()
        if tree.root.children:
            tree.root.children[-1].expand()
        tree.display = True
        if not self.query_one("#follow", SnapshotTable).has_focus:
            tree.focus()

    def _title(self, pkt: CutPacket) -> None:
        cut = self.cut
        assert cut is not None
        t = Text(end="")
        t.append(f"frame {pkt.frame}", style="bold")
        t.append(f"  packet {self.index + 1} of {len(cut.packets)}")
        t.append(" (cut)" if cut.truncated else "")
        if cut.session_id is not None:
            t.append(f" of session {cut.session_id}")
        t.append("  ")
        t.append_text(when(pkt.ts))
        t.append("  ")
        t.append_text(plain(self.context, limit=100))
        self.query_one("#title", Static).update(t)

    def _add(self, parent, node: Node, expand: bool) -> None:
        if node.children:
            branch = parent.add(plain(node.label, limit=300), expand=expand)
            for c in node.children:
                self._add(branch, c, False)
        else:
            parent.add_leaf(plain(node.label, limit=300))

    # --- keys ---
    def _go(self, index: int) -> None:
        cut = self.cut
        if cut is None or not 0 <= index < len(cut.packets):
            return
        if index in self._decoded:
            self._show_packet(index, self._decoded[index], None)
            return
        self.dissection = None
        self.problem = None
        self.index = index
        self._show_packet(index, None, None)
        self.query_one("#notice", Message1).say("decoding with tshark…")

        def work(store) -> tuple:
            return index, *self._decode(cut, index)
        self.decode_loader.request(work)

    def action_next_packet(self) -> None:
        self._go(self.index + 1)

    def action_prev_packet(self) -> None:
        self._go(self.index - 1)

    def action_follow(self) -> None:
        follow = self.query_one("#follow", SnapshotTable)
        if follow.display:
            follow.focus()

    def action_hex(self) -> None:
        pane = self.query_one("#hexpane")
        pane.display = not pane.display

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on an operation of the follow list: its packet."""
        cut = self.cut
        if cut is None or event.row_key.value is None:
            return
        frame = cut.ops[int(event.row_key.value)].frame
        at = next((i for i, p in enumerate(cut.packets) if p.frame == frame), None)
        if at is not None:
            self._go(at)
