"""Packet: the full Wireshark decode tree of one packet (pyshark in a worker thread)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static, Tree

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.views import queries
from plantwatch.core.views.dissect import DissectError, Dissection, Node, dissect
from plantwatch.tui.screens.base import BaseScreen, Message1
from plantwatch.tui.widgets.text import plain


def open_packet(app: App, row: queries.ConnRow) -> None:
    if row.capture_id is None or row.frame is None:
        app.notify("this connection has no packet reference", severity="warning")
        return
    app.push_screen(PacketScreen(PacketRef(int(row.capture_id), int(row.frame)),
                                 f"{row.client} → {row.server}:{row.server_port} {row.protocol or row.transport}"))


class PacketScreen(BaseScreen):
    def __init__(self, ref: PacketRef, context: str = "") -> None:
        super().__init__()
        self.ref = ref
        self.capture_id = ref.capture_id
        self.frame = ref.frame
        self.context = context
        self.dissection: Dissection | None = None
        self.problem: str | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(plain(f"packet {self.frame} of capture {self.capture_id}  {self.context}"),
                     id="title", classes="title")
        yield Message1(id="notice")
        yield Tree(plain("decode"), id="tree")

    def on_mount(self) -> None:
        ref = self.ref

        def work(store) -> tuple:
            loc = queries.packet_location(store, ref)
            if loc.path is None:
                return loc, None, f"capture {ref.capture_id} is not in the store"
            try:
                return loc, dissect(loc.path, ref.frame), None
            except DissectError as e:
                return ref, None, str(e)

        self.query_one("#notice", Message1).say("decoding with tshark…")
        self.query_one(Tree).display = False
        self.packet_loader = self.loader(work, self._show)
        self.packet_loader.request()

    def _show(self, result: tuple) -> None:
        ref, dis, problem = result
        self.problem = problem
        self.dissection = dis
        if problem is not None:
            self.query_one("#notice", Message1).say(problem, error=True)
            return
        self.query_one("#title", Static).update(plain(f"{dis.summary}  —  {ref.path}"))
        self.query_one("#notice", Message1).say("")
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.set_label(plain(dis.summary))
        for layer in dis.layers:
            self._add(tree.root, layer, expand=False)
        tree.root.expand()
        if tree.root.children:
            tree.root.children[-1].expand()
        tree.display = True
        tree.focus()

    def _add(self, parent, node: Node, expand: bool) -> None:
        if node.children:
            branch = parent.add(plain(node.label, limit=300), expand=expand)
            for c in node.children:
                self._add(branch, c, False)
        else:
            parent.add_leaf(plain(node.label, limit=300))
