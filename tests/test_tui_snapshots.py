"""Snapshot tests of the console's main screens at 120x40 and 80x24 (pytest-textual-snapshot).

The SVGs live in tests/__snapshots__/test_tui_snapshots/; after a deliberate change of the screens, regenerate them with
`pytest tests/test_tui_snapshots.py --snapshot-update` and look at every SVG before committing.
The store is the bundled demo, analysed offline, so the screens are deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwatch.tui.app import make_app
from plantwatch.tui.screens.device import DeviceScreen
from plantwatch.tui.screens.eventlog import EventLogScreen
from plantwatch.tui.screens.incidents import IncidentScreen
from tests.tui_support import ATTACKER, needs_demo, settle

pytestmark = needs_demo
SIZES = {"wide": (120, 40), "small": (80, 24)}


def app(store: Path):
    return make_app(store, source="demo store", poll_s=60.0)


async def devices(pilot) -> None:
    await settle(pilot)


async def device(pilot) -> None:
    await settle(pilot)
    await pilot.app.push_screen(DeviceScreen(ATTACKER))
    await settle(pilot)


async def incident(pilot) -> None:
    await settle(pilot)
    await pilot.press("i")
    await settle(pilot)
    scr = pilot.app.screen
    await pilot.app.push_screen(IncidentScreen(scr.snapshot.rows[0].incident_id))
    await settle(pilot)


async def event_log(pilot) -> None:
    await settle(pilot)
    await pilot.app.push_screen(EventLogScreen(f"device:{ATTACKER} port:102"))
    await settle(pilot)


async def breaches(pilot) -> None:
    await settle(pilot)
    await pilot.press("b")
    await settle(pilot)


async def breach(pilot) -> None:
    await breaches(pilot)
    rows = pilot.app.screen.snapshot.rows
    pilot.app.screen.query_one("#breaches").move_cursor(
        row=next(i for i, b in enumerate(rows) if b.model_id == "ics.new_action"))
    await pilot.press("v")
    await settle(pilot)


async def help_screen(pilot) -> None:
    await settle(pilot)
    await pilot.press("question_mark")
    await pilot.pause(0.2)


SCREENS = {"devices": devices, "device": device, "incident": incident, "event_log": event_log,
           "breaches": breaches, "breach": breach, "help": help_screen}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare, demo_store: Path, screen: str, size: str) -> None:
    assert snap_compare(app(demo_store), terminal_size=SIZES[size], run_before=SCREENS[screen])
