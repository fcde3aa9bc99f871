"""Pilot tests of the evidence path: breach -> breach detail -> evidence -> packet view, and a
connection's packet view opening at its first operation; asserting on what the screen shows."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
from pathlib import Path

import pytest

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.store.database import Store
from plantwatch.core.views.hexdump import hex_lines
from plantwatch.core.views.packet_cut import cut_session
from plantwatch.tui.app import make_app
from plantwatch.tui.screens.breach import BreachScreen
from plantwatch.tui.screens.breaches import BreachesScreen
from plantwatch.tui.screens.eventlog import EventLogScreen
from plantwatch.tui.screens.packet import PacketScreen
from plantwatch.tui.widgets.table import SnapshotTable
from tests.tui_support import needs_demo, settle, wait_until

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
SIZE = (120, 40)


def screen_text(app) -> str:
    """Everything the terminal shows, as one string (from Textual's own screenshot)."""
    svg = app.export_screenshot()
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return html.unescape("".join(parts)).replace("\xa0", " ")


def tree_labels(screen) -> list[str]:
    out = []

    def walk(node) -> None:
        out.append(str(node.label))
        for c in node.children:
            walk(c)
    walk(screen.query_one("Tree").root)
    return out


async def decoded(pilot, frame: int) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, PacketScreen) and (
        app.screen.problem or (app.screen.dissection is not None and app.screen.dissection.frame == frame)),
        60, f"the decode of frame {frame}")
    assert app.screen.problem is None
    await pilot.pause(0.1)


@needs_demo
@needs_tshark
@pytest.mark.tshark
def test_breach_evidence_opens_the_s7_write_and_n_steps(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("b")
            assert isinstance(app.screen, BreachesScreen)
            await settle(pilot)
            rows = app.screen.snapshot.rows
            row = next(i for i, b in enumerate(rows) if b.model_id == "ics.new_action")
            app.screen.query_one(SnapshotTable).move_cursor(row=row)
            await pilot.press("v")                                      # the breach in full
            assert isinstance(app.screen, BreachScreen)
            await settle(pilot)
            shown = screen_text(app)
            assert "Multiple New Action Commands" in shown
            # the explanation, not cut (wherever the screen wraps its lines)
            assert "none was sent to those targets" in " ".join(shown.split())
            assert "PLC Stop" in shown                                  # the numbers behind it
            assert "Baseline of 10.10.10.157" in shown
            assert "not seen while learning" in shown
            ev = app.screen.query_one("#evidence", SnapshotTable)
            assert ev.get_cell("0", "frame").plain == "112418"
            assert ev.get_cell("0", "server").plain == "10.20.20.21:102"
            await pilot.press("enter")                                  # its first evidence packet
            assert isinstance(app.screen, PacketScreen)
            await decoded(pilot, 112418)
            labels = tree_labels(app.screen)
            assert "Function: Write Var (0x05)" in labels
            assert "ROSCTR: Job (1)" in labels
            assert not any(lb.startswith("Flags:") and "SYN" in lb for lb in labels)
            shown = screen_text(app)
            assert "frame 112418" in shown and "packet 31 of 45" in shown
            assert "Write Var" in shown and "ACTION" in shown           # the follow list
            assert hex_lines(app.screen.cut.packets[30].data)[0] in shown   # the hex pane
            await pilot.press("n")                                      # the next packet: the reply
            await decoded(pilot, 112419)
            labels = tree_labels(app.screen)
            assert "ROSCTR: Ack_Data (3)" in labels
            assert "Function: Write Var (0x05)" in labels
            shown = screen_text(app)
            assert "frame 112419" in shown and "packet 32 of 45" in shown
            await pilot.press("p", "p")                                 # back past the write
            await decoded(pilot, 112414)                                # (the session's packet before it)
            assert "frame 112414" in screen_text(app) and "packet 30 of 45" in screen_text(app)
            await pilot.press("escape")
            assert isinstance(app.screen, BreachScreen)

    asyncio.run(main())


@needs_demo
@needs_tshark
@pytest.mark.tshark
def test_connection_opens_at_its_first_operation_not_the_syn(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.open_event_log("device:10.10.10.157 proto:s7comm")
            await settle(pilot)
            assert isinstance(app.screen, EventLogScreen)
            log = app.screen.query_one(SnapshotTable)
            first = app.screen.snapshot.rows[0]
            assert first.protocol == "s7comm"
            log.move_cursor(row=0)
            await pilot.press("enter")
            assert isinstance(app.screen, PacketScreen)
            await wait_until(pilot, lambda: app.screen.dissection or app.screen.problem, 60, "decode")
            scr = app.screen
            assert scr.problem is None
            assert scr.frame != first.frame                             # not the SYN
            labels = tree_labels(scr)
            assert any(lb.startswith("S7COMM") for lb in labels) or any("COTP" in lb for lb in labels)
            assert scr.cut.ops and scr.frame == scr.cut.ops[0].frame    # the first operation
            assert f"frame {scr.frame}" in screen_text(app)

    asyncio.run(main())


@needs_demo
def test_cut_session_keeps_frames_and_finds_ops(demo_store: Path) -> None:
    with Store(demo_store, readonly=True) as st:
        sid, ff, fframe, lframe = st.execute(
            "SELECT session_id, first_file, first_frame, last_frame FROM sessions"
            " WHERE server_port = 102 AND n_ops > 0 ORDER BY first_ts DESC LIMIT 1").fetchone()
        cut = cut_session(st, sid, PacketRef(ff, fframe))
        try:
            frames = [p.frame for p in cut.packets]
            assert frames[0] == fframe and frames[-1] == lframe
            assert frames == sorted(frames)
            assert cut.ops and all(fframe <= o.frame <= lframe for o in cut.ops)
            assert cut.packets[cut.first_data()].frame == cut.ops[0].frame
        finally:
            cut.remove()


@needs_demo
def test_incident_timeline_opens_a_breach_in_full(demo_store: Path) -> None:
    from plantwatch.tui.screens.incidents import IncidentScreen

    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("i")
            await settle(pilot)
            await pilot.press("enter")
            assert isinstance(app.screen, IncidentScreen)
            await settle(pilot)
            timeline = app.screen.query_one("#timeline", SnapshotTable)
            timeline.focus()
            timeline.move_cursor(row=2)
            entry = app.screen._entries[2]
            await pilot.press("v")
            assert isinstance(app.screen, BreachScreen)
            await settle(pilot)
            assert app.screen.detail.breach.breach_id == entry.breach_id
            assert app.screen.detail.breach.explanation in screen_text(app).replace("\n", " ") or \
                app.screen.detail.breach.explanation[:60] in screen_text(app)

    asyncio.run(main())


@needs_demo
def test_cut_of_a_long_session_is_a_window_around_the_packet(monkeypatch: pytest.MonkeyPatch, demo_store: Path) -> None:
    import plantwatch.core.views.packet_cut as packet_cut

    monkeypatch.setattr(packet_cut, "MAX_PACKETS", 10)
    with Store(demo_store, readonly=True) as st:
        sid, ff, fframe = st.execute(
            "SELECT session_id, first_file, first_frame FROM sessions"
            " WHERE pkts_c2s + pkts_s2c > 40 ORDER BY first_ts LIMIT 1").fetchone()
        whole = cut_session(st, sid, PacketRef(ff, fframe))
        whole.remove()
        assert len(whole.packets) == 10 and whole.truncated         # the first 10, from its start
        middle = whole.packets[7].ref
        monkeypatch.setattr(packet_cut, "MAX_PACKETS", 6)
        cut = cut_session(st, sid, middle)
        cut.remove()
        assert [p.frame for p in cut.packets] == [p.frame for p in whole.packets[4:10]]
        assert cut.index_of(middle) == 3 and cut.truncated
