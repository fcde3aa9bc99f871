"""Triage in the console (Pilot): keys on the breach log write the store, the screen shows it at
once, and `plantwatch analyze --json` on the same store reports it."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from plantwatch.tui.app import make_app
from plantwatch.tui.cli import main
from plantwatch.tui.screens.breaches import BreachesScreen
from plantwatch.tui.screens.incidents import IncidentsScreen
from plantwatch.tui.screens.triage_modal import AskScreen, WindowScreen
from plantwatch.tui.widgets.table import SnapshotTable
from tests.tui_support import ATTACKER, DEMO, apply_filter, needs_demo, notice, settle, wait_until

SIZE = (120, 40)


def column(table: SnapshotTable, name: str) -> list[str]:
    return [table.get_cell(k, name).plain for k in table.keys]




async def wait_written(pilot, n: int) -> None:
    scr = pilot.app.screen
    await wait_until(pilot, lambda: scr.triage_writes >= n, 30, f"triage write {n}")
    await settle(pilot)


@needs_demo
def test_console_triage_keys_show_on_screen_and_in_json(tmp_path: Path, demo_store: Path) -> None:
    store = tmp_path / "demo.sqlite"
    shutil.copy(demo_store, store)
    app = make_app(store, source="demo store")
    seen: dict[str, str] = {}

    async def drive() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("b")
            assert isinstance(app.screen, BreachesScreen)
            await settle(pilot)
            scr = app.screen
            table = scr.query_one(SnapshotTable)
            assert set(column(table, "state")) == {"new"}
            # accept the attacker's admin RDP as normal (A asks why)
            await apply_filter(pilot, "RDP")
            assert table.row_count == 1 and column(table, "device") == [ATTACKER]
            seen["rdp"] = table.keys[0]
            table.focus()
            await pilot.press("A")
            assert isinstance(app.screen, AskScreen)
            await pilot.press(*"vendor remote support", "enter")
            await wait_written(pilot, 1)
            assert table.row_count == 0 and "no breaches" in notice(scr)   # no longer in force
            await apply_filter(pilot, "state:accepted")
            assert table.keys == [seen["rdp"]] and column(table, "state") == ["accepted"]
            # u on an accepted breach withdraws the acceptance; accept it again
            table.focus()
            await pilot.press("u")
            await wait_written(pilot, 2)
            assert table.row_count == 0
            await apply_filter(pilot, "RDP")
            assert table.keys == [seen["rdp"]] and column(table, "state") == ["new"]
            table.focus()
            await pilot.press("A", *"vendor remote support", "enter")
            await wait_written(pilot, 3)
            assert table.row_count == 0
            # acknowledge, mark false positive with a note, undo: the reprogram breach
            await apply_filter(pilot, "reprogram")
            assert table.row_count == 1
            seen["reprogram"] = table.keys[0]
            table.focus()
            await pilot.press("a")
            await wait_written(pilot, 4)
            assert column(table, "state") == ["ack"]
            await pilot.press("f")
            assert isinstance(app.screen, AskScreen)
            await pilot.press(*"bench PLC", "enter")
            await wait_written(pilot, 5)
            assert column(table, "state") == ["false pos."]
            await pilot.press("u")
            await wait_written(pilot, 6)
            assert column(table, "state") == ["ack"]
            await apply_filter(pilot, "state:ack")
            assert table.keys == [seen["reprogram"]]
            # an unknown state is an error line, not an empty list
            await apply_filter(pilot, "state:bogus")
            assert table.row_count == 0 and "state:bogus is not a state" in notice(scr)
            # a maintenance window, prefilled from the selected breach (w), saved with Enter
            await apply_filter(pilot, "New Action")
            assert table.row_count == 1
            seen["action"] = table.keys[0]
            table.focus()
            await pilot.press("w")
            assert isinstance(app.screen, WindowScreen)
            assert app.screen.query_one("#w-classes").value == "ACTION"
            await pilot.press("enter")
            await wait_written(pilot, 7)
            assert column(table, "state") == ["window"]
            # the incidents: a state column and the same keys
            await pilot.press("i")
            assert isinstance(app.screen, IncidentsScreen)
            await settle(pilot)
            incs = app.screen.query_one(SnapshotTable)
            assert column(incs, "state") == ["new"] and column(incs, "device") == [ATTACKER]
            seen["incident"] = incs.keys[0]
            incs.focus()
            await pilot.press("a")
            await wait_written(pilot, 1)
            assert column(incs, "state") == ["ack"]

    asyncio.run(drive())
    res = CliRunner().invoke(main, ["analyze", str(DEMO / "incident.pcapng.gz"), "--store", str(store), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    by_id = {str(b["breach_id"]): b for b in data["breaches"]}
    assert seen["rdp"] not in by_id
    rdp = [b for b in data["triage"]["suppressed"] if str(b["breach_id"]) == seen["rdp"]]
    assert rdp and rdp[0]["triage"]["disposition"] == "accepted" and rdp[0]["triage"]["by"] == "vendor remote support"
    st = by_id[seen["reprogram"]]["state"]
    assert st["state"] == "acknowledged" and st["user"] and st["at"]
    assert by_id[seen["action"]]["triage"]["disposition"] == "window"
    assert by_id[seen["action"]]["incident_id"] is None
    assert data["triage"]["counts"] == {"accepted": 1, "suppressed": 0, "in_window": 1}
    assert [(a["accept_id"], a["why"]) for a in data["triage"]["acceptances"]] == [(2, "vendor remote support")]
    inc = next(i for i in data["incidents"] if str(i["incident_id"]) == seen["incident"])
    assert inc["state"]["state"] == "acknowledged" and seen["rdp"] not in {str(t["breach_id"]) for t in inc["timeline"]}
