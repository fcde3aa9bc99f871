"""Pilot tests: drive every screen of the console and the main path, asserting on what is shown."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.tui.app import make_app
from plantwatch.tui.live import DemoPipeline
from plantwatch.tui.screens.breaches import BreachesScreen
from plantwatch.tui.screens.device import DeviceScreen
from plantwatch.tui.screens.devices import DevicesScreen
from plantwatch.tui.screens.eventlog import EventLogScreen
from plantwatch.tui.screens.help import HelpScreen
from plantwatch.tui.screens.incidents import IncidentScreen, IncidentsScreen
from plantwatch.tui.screens.packet import PacketScreen
from plantwatch.tui.widgets.table import SnapshotTable
from tests.tui_support import (
    ATTACKER,
    DEMO,
    HOSTILE,
    apply_filter,
    hostile_capture,
    needs_demo,
    settle,
    static_text,
    wait_until,
)

SIZE = (120, 40)


def run(coro) -> None:
    asyncio.run(coro)


def cell(table: SnapshotTable, key: str, column: str) -> str:
    return table.get_cell(key, column).plain


def column(table: SnapshotTable, name: str) -> list[str]:
    return [table.get_cell(k, name).plain for k in table.keys]




needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@needs_demo
@needs_tshark
@pytest.mark.tshark
@pytest.mark.slow
def test_main_path_demo(tmp_path: Path) -> None:
    """Open the demo, wait for the incident, open it, the new device, its port-102 event log, a packet."""
    store = tmp_path / "demo.sqlite"
    app = make_app(store, DemoPipeline(store, DEMO, paced=False), poll_s=0.2)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.store_status is not None and app.store_status.incidents > 0,
                             timeout=180, what="the demo's incident")
            assert app.pipeline_status.phase in ("detecting", "done")
            await pilot.press("i")
            assert isinstance(app.screen, IncidentsScreen)
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert table.row_count >= 1
            assert ATTACKER in column(table, "device")
            table.move_cursor(row=column(table, "device").index(ATTACKER))
            await pilot.press("enter")
            assert isinstance(app.screen, IncidentScreen)
            await settle(pilot)
            title = static_text(app.screen, "#title")
            assert ATTACKER in title or ATTACKER in static_text(app.screen, "#facts")
            assert "T0" in static_text(app.screen, "#facts")          # ATT&CK for ICS ids
            assert app.screen.query_one("#timeline", SnapshotTable).row_count >= 3
            await pilot.press("o")                                    # the new device
            assert isinstance(app.screen, DeviceScreen)
            await settle(pilot)
            assert app.screen.device == ATTACKER
            assert "DESKTOP-4H7KQ2P" in static_text(app.screen, "#title")
            assert "new" in static_text(app.screen, "#learning")
            assert "Experimental" in static_text(app.screen, "#breaches") or \
                "Unusual" in static_text(app.screen, "#breaches")
            peers = app.screen.query_one("#peers", SnapshotTable)
            await pilot.press("p")
            row = next(i for i, k in enumerate(peers.keys) if k.split("|")[2] == "102"
                       and k.startswith("out|10.20.20."))
            peers.move_cursor(row=row)
            await pilot.press("enter")                                # its port-102 event log
            assert isinstance(app.screen, EventLogScreen)
            await settle(pilot)
            log = app.screen.query_one(SnapshotTable)
            assert log.row_count > 0
            assert all(s.endswith(":102") for s in column(log, "server"))
            assert all(c.startswith(ATTACKER + ":") or s.startswith(ATTACKER + ":")
                       for c, s in zip(column(log, "client"), column(log, "server"), strict=True))
            assert "s7comm" in column(log, "proto")
            log.move_cursor(row=column(log, "proto").index("s7comm"))
            await pilot.press("enter")                                # a packet
            assert isinstance(app.screen, PacketScreen)
            await wait_until(pilot, lambda: app.screen.dissection is not None or app.screen.problem,
                             timeout=60, what="the packet decode")
            assert app.screen.problem is None
            labels = [str(n.label) for n in app.screen.query_one("Tree").root.children]
            assert any("Internet Protocol Version 4" in lb for lb in labels)
            assert any("TCP" in lb.upper() or "Transmission" in lb for lb in labels)
            for screen_type in (EventLogScreen, DeviceScreen, IncidentScreen, IncidentsScreen, DevicesScreen):
                await pilot.press("escape")
                assert isinstance(app.screen, screen_type)
            await pilot.press("escape")                               # nowhere further back
            assert isinstance(app.screen, DevicesScreen)

    run(main())


@needs_demo
def test_devices_screen_filter_sort_and_cursor(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert table.row_count == app.store_status.devices
            scores = [float(s) for s in column(table, "score") if s.strip() != "-"]
            assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
            assert table.selected_key == ATTACKER                    # highest threat first
            await pilot.press("slash")
            assert app.screen.query_one("#filter").has_focus
            await pilot.press(*"zone:ot role:plc", "enter")
            await settle(pilot)
            assert table.row_count >= 4
            assert set(column(table, "role")) == {"plc"} and set(column(table, "zone")) == {"Industrial"}
            # update in place keeps the cursor on the same device
            table.move_cursor(row=2)
            key = table.selected_key
            app.screen.refresh_data()
            await settle(pilot)
            assert table.selected_key == key
            await pilot.press("escape")                               # clears the filter
            await settle(pilot)
            assert table.row_count == app.store_status.devices
            await pilot.press("slash", *"new:yes port:102", "enter")
            await settle(pilot)
            assert ATTACKER in column(table, "address")
            assert set(column(table, "new")) == {"new"}
            await apply_filter(pilot, "score:>0.5")
            assert table.row_count >= 1
            assert all(float(s) > 0.5 for s in column(table, "score"))
            await apply_filter(pilot, "bogus:1")
            assert "unknown filter bogus" in static_text(app.screen, "#notice")
            await apply_filter(pilot, "")
            assert table.row_count == app.store_status.devices
            await pilot.press("s")                                    # next sort: address
            await settle(pilot)
            assert app.screen.sort == "address"
            assert column(table, "address")[:3] == ["3.121.100.67", "9.9.9.9", "10.10.10.2"]

    run(main())


@needs_demo
def test_breaches_incidents_help_and_escape(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("b")
            assert isinstance(app.screen, BreachesScreen)
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert table.row_count == app.store_status.breaches > 0
            times = column(table, "time")
            assert times == sorted(times, reverse=True)               # newest first
            await pilot.press("slash", *"RDP", "enter")
            await settle(pilot)
            assert table.row_count >= 1
            assert all("RDP" in m for m in column(table, "model"))
            await pilot.press("e")                                     # evidence connections
            assert isinstance(app.screen, EventLogScreen)
            await settle(pilot)
            log = app.screen.query_one(SnapshotTable)
            assert log.row_count >= 1 and all(s.endswith(":3389") for s in column(log, "server"))
            await pilot.press("escape")
            await pilot.press("p")                                     # its evidence packet
            assert isinstance(app.screen, PacketScreen)
            assert (app.screen.capture_id, app.screen.frame) != (0, 0)
            await pilot.press("escape")
            await pilot.press("enter")                                 # the breach's device
            assert isinstance(app.screen, DeviceScreen)
            await settle(pilot)
            await pilot.press("escape", "escape")
            assert isinstance(app.screen, DevicesScreen)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            text = static_text(app.screen, "Static:last-of-type")
            for key in ("Escape", "space", "/", "Enter"):
                assert key in text
            await pilot.press("escape")
            assert isinstance(app.screen, DevicesScreen)
            await pilot.press("l")
            assert isinstance(app.screen, EventLogScreen)
            await settle(pilot)
            assert app.screen.query_one(SnapshotTable).row_count == 500     # capped, newest first
            assert "of" in static_text(app.screen, "#notice")
            await pilot.press("slash", *"device:10.10.10.157 state:failed", "enter")
            await settle(pilot)
            states = set(column(app.screen.query_one(SnapshotTable), "state"))
            assert states and states <= {"refused", "unanswered", "unreachable"}
            await pilot.press("d")
            assert isinstance(app.screen, DevicesScreen)

    run(main())


def test_empty_store_says_so_honestly(empty_store: Path) -> None:
    app = make_app(empty_store, source="empty")

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert "no devices yet" in static_text(app.screen, "#notice")
            await pilot.press("b")
            await settle(pilot)
            assert "no breaches yet" in static_text(app.screen, "#notice")
            await pilot.press("i")
            await settle(pilot)
            assert "no incidents yet" in static_text(app.screen, "#notice")

    run(main())


def test_wire_strings_are_shown_as_plain_text(hostile_store: Path) -> None:
    """A DHCP host name, RDP cookie and SNI carrying Rich markup and an ANSI escape appear literally."""
    app = make_app(hostile_store, source="hostile")
    shown = HOSTILE.replace("\x1b", "\\x1b")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            name = table.get_cell("10.0.0.66", "name")
            assert shown.startswith(name.plain.rstrip("…")) and len(name.plain) >= 20   # cut to the column
            assert not name.spans and not name.style
            svg = app.export_screenshot()
            assert "\x1b" not in svg
            assert "[bold&#160;red]x[/]\\x1b[31mE" in svg or "[bold red]x[/]\\x1b[31mE" in svg
            table.move_cursor(row=table.keys.index("10.0.0.66"))
            await pilot.press("enter")
            assert isinstance(app.screen, DeviceScreen)
            await settle(pilot)
            assert shown in static_text(app.screen, "#identity")
            await pilot.press("l")
            await settle(pilot)
            facts = column(app.screen.query_one(SnapshotTable), "facts")
            assert f"sni={shown}" in facts and f"rdp user={shown}" in facts

    run(main())


@needs_tshark
def test_packet_screen_when_capture_is_gone(tmp_path: Path) -> None:
    cap = hostile_capture(tmp_path / "gone.pcapng")
    store = tmp_path / "gone.sqlite"
    with Store(store) as st:
        Ingest(st).run([cap])
    app = make_app(store, source="gone")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("l")
            await settle(pilot)
            log = app.screen.query_one(SnapshotTable)
            log.move_cursor(row=column(log, "proto").index("rdp"))
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.screen.dissection or app.screen.problem, 60, "decode")
            labels = [str(n.label) for n in app.screen.query_one("Tree").root.children]
            assert any("Transmission Control Protocol" in lb for lb in labels)
            # the RDP cookie inside the decode tree is plain text too
            await pilot.press("escape")
            cap.unlink()
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.screen.dissection or app.screen.problem, 60, "decode")
            assert "is gone" in app.screen.problem
            assert "is gone" in static_text(app.screen, "#notice")

    run(main())


def test_packet_screen_without_tshark(monkeypatch: pytest.MonkeyPatch, hostile_store: Path) -> None:
    import plantwatch.core.views.dissect

    monkeypatch.setattr(plantwatch.core.views.dissect, "tshark_path", lambda: None)
    app = make_app(hostile_store, source="hostile")

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("l")
            await settle(pilot)
            await pilot.press("enter")
            assert isinstance(app.screen, PacketScreen)
            await wait_until(pilot, lambda: app.screen.problem, 30, "the problem")
            assert "tshark is not installed" in static_text(app.screen, "#notice")

    run(main())


@needs_demo
def test_small_terminal_device_and_incident_screens(demo_store: Path) -> None:
    """80x24: every main screen opens and shows its key facts."""
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("enter")
            assert isinstance(app.screen, DeviceScreen)
            await settle(pilot)
            assert ATTACKER in static_text(app.screen, "#title")
            await pilot.press("e")
            assert isinstance(app.screen, EventLogScreen)
            await settle(pilot)
            assert app.screen.query_one("#filter").value == f"device:{ATTACKER}"
            await pilot.press("i")
            await settle(pilot)
            await pilot.press("enter")
            assert isinstance(app.screen, IncidentScreen)
            await settle(pilot)
            assert app.screen.detail is not None
            assert app.screen.detail.incident.narrative
            assert app.screen.detail.incident.narrative[:30] in static_text(app.screen, "#narrative")

    run(main())


@needs_demo
def test_demo_replay_keys(tmp_path: Path) -> None:
    """space pauses, + and - change the speed, > plays the rest at once."""
    store = tmp_path / "demo.sqlite"
    pipeline = DemoPipeline(store, DEMO, speed=1000.0)
    app = make_app(store, pipeline, poll_s=0.2)

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("space")
            assert pipeline.replay.paused
            await pilot.press("space")
            assert not pipeline.replay.paused
            await pilot.press("plus")
            assert pipeline.replay.speed == 2000.0
            await pilot.press("minus", "minus")
            assert pipeline.replay.speed == 500.0
            await pilot.press("greater_than_sign")
            assert pipeline.replay.finishing
            await wait_until(pilot, lambda: "learning" in str(app.screen.query_one("StatusBar").render())
                             or app.pipeline_status.phase != "idle", 30, "the status bar")
        pipeline.stop()
        pipeline.join(60)

    run(main())
