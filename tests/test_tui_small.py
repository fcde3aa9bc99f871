"""The console at 80x24 and without colour: the essential keys first in the footer, low-value
columns dropped before the rest, a visible focus after Tab and a cursor marker under NO_COLOR."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plantwatch.tui.app import make_app
from plantwatch.tui.widgets.footer import KeyFooter
from plantwatch.tui.widgets.table import SnapshotTable
from tests.test_tui_packet import screen_text
from tests.tui_support import needs_demo, settle


def footer_keys(app) -> list[str]:
    return [k.key_display for k in app.screen.query_one(KeyFooter).query("FooterKey")]


@needs_demo
def test_80x24_footer_and_columns(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            last = screen_text(app).splitlines()[-1]
            assert "? Help" in last and "i Incidents" in last          # the essentials fit
            table = app.screen.query_one(SnapshotTable)
            assert table.shown_columns[:5] == ["score", "address", "name", "role", "breaches"]
            assert "first" not in table.shown_columns and "vendor" not in table.shown_columns
            await pilot.press("l")
            await settle(pilot)
            keys = footer_keys(app)
            assert keys[:2] == ["esc", "/"] and "?" in keys           # the screen's keys, then help
            last = screen_text(app).splitlines()[-1]
            assert "] Older" in last and "? Help" in last
            log = app.screen.query_one(SnapshotTable)
            assert log.shown_columns == ["time", "client", "server", "proto", "state"]
            await pilot.resize_terminal(160, 30)
            await settle(pilot)
            assert "facts" in log.shown_columns and "pkts" in log.shown_columns
            assert "l" in footer_keys(app) and "d" in footer_keys(app)   # room for every key

    asyncio.run(main())


@needs_demo
def test_focus_is_visible_after_tab(demo_store: Path) -> None:
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert table.has_focus
            lit = table.get_component_rich_style("datatable--header")
            await pilot.press("tab")
            assert not table.has_focus
            dim = table.get_component_rich_style("datatable--header")
            assert lit.bgcolor != dim.bgcolor                          # the header shows the focus
            flt = app.screen.query_one("#filter")
            assert flt.has_focus

    asyncio.run(main())


@needs_demo
def test_no_color_cursor_marker(monkeypatch: pytest.MonkeyPatch, demo_store: Path) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(demo_store, source="demo store")

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert app.has_class("-no-color")
            rows = [ln for ln in screen_text(app).splitlines() if "10.10.10.157" in ln or "10.20.20.41" in ln]
            assert rows[0].startswith(">") and "10.10.10.157" in rows[0]
            assert not rows[1].startswith(">")
            await pilot.press("down")
            await pilot.pause(0.1)
            rows = [ln for ln in screen_text(app).splitlines() if "10.10.10.157" in ln or "10.20.20.41" in ln]
            assert not rows[0].startswith(">") and rows[1].startswith(">")   # the marker follows

    asyncio.run(main())
