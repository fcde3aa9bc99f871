"""Shared by the console tests: how the test stores are built (tests/conftest.py holds them as
fixtures), and Pilot helpers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import write_pcapng
from plantwatch.core.views import queries

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo_data"
ATTACKER = "10.10.10.157"
HOSTILE = "[bold red]x[/]\x1b[31mEVIL"

needs_demo = pytest.mark.skipif(
    not (DEMO / "learn.pcapng.gz").exists() or not (DEMO / "incident.pcapng.gz").exists(),
    reason="demo captures not generated (python demo_data/generate.py)")

def build_demo_store(path: Path) -> Path:
    """The bundled demo, learned then detected, in one store."""
    zones = Zones.load(DEMO / "zones.toml")
    with Store(path) as store:
        report = Ingest(store, zones, mode="learn").run([DEMO / "learn.pcapng.gz"])
        with store.transaction():
            queries.set_learn_end(store, report.captures[0].last_ts)
        Ingest(store, zones).run([DEMO / "incident.pcapng.gz"])
    return path


def hostile_capture(path: Path) -> Path:
    """A capture whose DHCP host name, RDP cookie and TLS SNI carry Rich markup and an ANSI escape."""
    pc, srv, ext = ("02:00:00:00:00:01", "10.0.0.66"), ("02:00:00:00:00:02", "10.0.0.5"), \
        ("02:00:00:00:00:03", "203.0.113.7")
    t = 1_700_000_000 * 1_000_000_000
    recs: list[tuple[int, bytes]] = []
    dhcp = f.dhcp(3, 0x1234, pc[0], hostname=HOSTILE, requested_ip=pc[1])
    recs.append((t, f.udp_frame(pc[0], "ff:ff:ff:ff:ff:ff", "0.0.0.0", "255.255.255.255", 68, 67, dhcp)))

    def tcp_conv(t0: int, dst: tuple[str, str], dport: int, payload: bytes, sport: int) -> None:
        c, s = 1000, 5000
        recs.append((t0, f.tcp_frame(pc[0], dst[0], pc[1], dst[1], sport, dport, b"", seq=c, flags=0x02)))
        recs.append((t0 + 1000, f.tcp_frame(dst[0], pc[0], dst[1], pc[1], dport, sport, b"", seq=s, ack=c + 1, flags=0x12)))
        recs.append((t0 + 2000, f.tcp_frame(pc[0], dst[0], pc[1], dst[1], sport, dport, b"", seq=c + 1, ack=s + 1, flags=0x10)))
        recs.append((t0 + 3000, f.tcp_frame(pc[0], dst[0], pc[1], dst[1], sport, dport, payload, seq=c + 1, ack=s + 1, flags=0x18)))

    tcp_conv(t + 10**9, srv, 3389, f.rdp_connection_request(HOSTILE), 50001)
    tcp_conv(t + 2 * 10**9, ext, 443, f.tls_client_hello(bytes(32), sni=HOSTILE), 50002)
    write_pcapng(path, sorted(recs))
    return path


def build_hostile_store(folder: Path) -> Path:
    """A store holding hostile_capture()."""
    cap = hostile_capture(folder / "hostile.pcapng")
    path = folder / "hostile.sqlite"
    with Store(path) as store:
        Ingest(store).run([cap])
    return path


async def wait_until(pilot, predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Let the app run until `predicate()` holds (the console loads data in worker threads)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def settle(pilot, timeout: float = 30.0) -> None:
    """Wait until the current screen and the app's status have loaded and nothing is pending."""
    app = pilot.app

    def ready() -> bool:
        scr = app.screen
        loaders = getattr(scr, "loaders", None)
        tables = [t for t in scr.query("SnapshotTable") if t.populating]
        return app.store_status is not None and (loaders is None or scr.loading_done) and not tables

    await wait_until(pilot, ready, timeout, f"{type(app.screen).__name__} to load")
    await pilot.pause(0.1)


def static_text(screen, selector: str) -> str:
    """The plain text a Static widget of the screen shows."""
    r = screen.query_one(selector).render()
    return getattr(r, "plain", str(r))


def notice(screen) -> str:
    """The screen's notice line (counts, errors, empty-list messages)."""
    return static_text(screen, "#notice")


async def apply_filter(pilot, text: str) -> None:
    """Type a filter the way a user would after pressing /: replace the text, then Enter."""
    flt = pilot.app.screen.query_one("#filter")
    flt.focus()
    await wait_until(pilot, lambda: flt.has_focus, 10, "the filter bar's focus")
    flt.value = text
    await pilot.press("enter")
    await settle(pilot)
