"""Pilot: identity from the wire in the console. The devices list carries model, firmware and a
CVE count (last columns, so an 80-column terminal drops them first), `model:`/`fw:`/`serial:`
filter it, and the device screen shows each stated value with the frames that prove it and the
matching advisories."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.store.vulns import import_path
from plantwatch.core.views.console.filters import parse_device_filter
from plantwatch.tui.app import make_app
from plantwatch.tui.screens.device import DeviceScreen
from plantwatch.tui.widgets.table import SnapshotTable
from tests.test_tui_app import apply_filter, static_text
from tests.tui_support import settle

DATA = Path(__file__).parent / "data"
SIZE = (200, 40)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui_identity") / "s.sqlite"
    with Store(path) as st:
        Ingest(st).run([DATA / "real" / "s7comm_snap7.pcap", DATA / "zeek" / "s7ident" / "s7ident.pcap"])
        import_path(st, DATA / "vulns")
    return path


def test_filter_words() -> None:
    f = parse_device_filter("model:6ES7 fw:V3.2 serial:C-B1U")
    assert (f.model, f.firmware, f.serial) == ("6es7", "v3.2", "c-b1u")


def test_devices_list_and_device_screen_show_identity(store: Path) -> None:
    app = make_app(store, source="identity")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert table.get_cell("134.217.61.211", "model").plain == "6ES7 315-2EH14-0AB0"
            assert table.get_cell("134.217.61.211", "fw").plain == "V3.2.7"
            assert table.get_cell("134.217.61.211", "cves").plain == ""
            assert table.get_cell("172.17.0.2", "fw").plain == "V3.2.6"
            assert table.get_cell("172.17.0.2", "cves").plain == "1"
            assert table.get_cell("134.217.61.131", "model").plain == ""   # the client states nothing
            await apply_filter(pilot, "fw:v3.2.6")
            await settle(pilot)
            assert table.keys == ["172.17.0.2"]
            await apply_filter(pilot, 'serial:"S C-B1U393142011"')
            await settle(pilot)
            assert table.keys == ["134.217.61.211"]
            table.focus()
            table.move_cursor(row=0)
            await pilot.press("enter")
            assert isinstance(app.screen, DeviceScreen)
            await settle(pilot)
            wire = static_text(app.screen, "#wire")
            lines = wire.splitlines()
            assert lines[0] == "Identity from the wire"
            # SZL 0x0011 answered on frames 4 and 14, SZL 0x001C completed on frame 8 (tshark)
            assert "model  6ES7 315-2EH14-0AB0  s7comm, capture 1 frame 4 … frame 14, 2 answers" in wire
            assert "firmware  V3.2.7  s7comm, capture 1 frame 4 … frame 14, 2 answers" in wire
            assert "serial  S C-B1U393142011  s7comm, capture 1 frame 8" in wire
            assert "module  CPU 315-2 PN/DP" in wire
            assert "cpe:2.3:o:siemens:cpu_315-2_pn\\/dp_firmware:v3.2.7" in wire
            assert "CVE-" not in wire     # V3.2.7 is outside every fixture range
            await pilot.press("escape")
            await settle(pilot)

    asyncio.run(main())


def test_a_narrow_terminal_drops_the_identity_columns_first(store: Path) -> None:
    """Shrinking from 200 to 80 columns: firmware, model and the CVE count go before any other."""
    app = make_app(store, source="identity")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            assert {"model", "fw", "cves", "first", "vendor"} <= set(table.shown_columns)
            gone: list[str] = []
            for width in range(190, 79, -10):
                await pilot.resize_terminal(width, 40)
                await settle(pilot)
                gone += [k for k in ("model", "fw", "cves", "first", "vendor", "activity", "new", "zone")
                         if k not in table.shown_columns and k not in gone]
            assert gone[:3] == ["fw", "model", "cves"] and len(gone) > 3
            assert table.shown_columns[:4] == ["score", "address", "name", "role"]

    asyncio.run(main())


def test_device_screen_lists_matching_advisory(store: Path) -> None:
    app = make_app(store, source="identity")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            table.move_cursor(row=table.keys.index("172.17.0.2"))
            await pilot.press("enter")
            await settle(pilot)
            wire = static_text(app.screen, "#wire")
            assert ("CVE-0000-1001  CVSS 7.5  ICSA-TEST-0001: SIMATIC S7-300 CPU 315-2 PN/DP (< 3.2.7),"
                    " firmware V3.2.6") in wire

    asyncio.run(main())


def test_identity_strings_from_the_wire_are_shown_as_text(tmp_path: Path) -> None:
    """A module name carrying Rich markup and an ANSI escape appears literally, escaped."""
    from tests.test_identity import _plc_capture
    from tests.tui_support import HOSTILE

    cap = tmp_path / "hostile_szl.pcap"
    _plc_capture(cap, 1_700_000_000_000_000_000, (3, 1), HOSTILE[:24])
    store = tmp_path / "h.sqlite"
    with Store(store) as st:
        Ingest(st).run([cap])
    app = make_app(store, source="hostile identity")
    shown = HOSTILE[:24].replace("\x1b", "\\x1b")

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SnapshotTable)
            table.move_cursor(row=table.keys.index("10.20.20.10"))
            await pilot.press("enter")
            await settle(pilot)
            wire = app.screen.query_one("#wire").render()
            assert f"serial  {shown}" in wire.plain
            assert not any("red" in str(s.style) for s in wire.spans if "EVIL" in wire.plain[s.start:s.end])
            assert "\x1b" not in app.export_screenshot()

    asyncio.run(main())
