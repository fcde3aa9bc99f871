"""The commands that hand evidence over: `export incident` (a bundle folder), `report --html`
(the plant at a glance), and the `--syslog` options `analyze` and `sensor` share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plantwatch.tui.cli_support import STORE, fail, note

if TYPE_CHECKING:
    from plantwatch.core.pipeline.siem import Forwarder


def syslog_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--syslog URL and --syslog-format cef|json."""
    f = click.option("--syslog-format", "syslog_format", type=click.Choice(["cef", "json"]), default="cef",
                     show_default=True, help="Body of the syslog messages.")(f)
    return click.option("--syslog", "syslog_url", metavar="udp://HOST:PORT|tcp://HOST:PORT",
                        help="Send breaches and incidents as syslog (RFC 5424) to a SIEM.")(f)


def open_forwarder(url: str | None, fmt: str) -> Forwarder | None:
    """The checked forwarder for --syslog, None without it; a bad target fails (exit 2)."""
    if not url:
        return None
    from plantwatch.core.pipeline.siem import SiemError, make_forwarder

    try:
        return make_forwarder(url, fmt)
    except SiemError as e:
        fail(str(e))
    return None


def report_sent(fwd: Forwarder, sent: tuple[int, int]) -> None:
    snd = fwd.sender
    lost = snd.pending + snd.dropped
    failed = f"; {lost} message(s) could not be delivered" if lost else ""
    note(f"syslog {snd.target}: sent {sent[0]} breach(es) and {sent[1]} incident(s){failed}")


@click.group("export")
def export() -> None:
    """Export evidence to hand over (see `export incident`)."""


@export.command("incident")
@click.argument("incident_id", type=int)
@click.option("--store", "store_path", type=STORE, required=True,
              help="The store that holds the incident.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder to write the bundle into (created).")
@click.option("--captures", "capture_dirs", multiple=True, type=click.Path(path_type=Path),
              help="A folder to look for moved capture files in (repeat the option).")
def export_incident(incident_id: int, store_path: Path, out_dir: Path, capture_dirs: tuple[Path, ...]) -> None:
    """Write one incident's bundle: report.html, evidence.pcapng, incident.json, baselines.json
    and SHA256SUMS. The same store gives the same bytes."""
    from plantwatch.core.store.database import Store, StoreError
    from plantwatch.core.views.export.bundle import export_incident as write_bundle
    from plantwatch.core.views.export.evidence import ExportError

    try:
        with Store(store_path, readonly=True) as store:
            res = write_bundle(store, incident_id, out_dir, capture_dirs)
    except (StoreError, ExportError) as e:
        fail(str(e))
    click.echo(f"{res.out}: {', '.join(res.files)} ({res.breaches} breaches, {res.packets:,} packets "
               f"of {res.sessions} evidence sessions)")


@click.command("report")
@click.option("--store", "store_path", type=STORE, required=True,
              help="The store to report on.")
@click.option("--since", "since", help="Only what started since then: an ISO date or time (UTC) or a "
                                       "span back from the last packet (24h, 7d).")
@click.option("--html", "html_out", type=click.Path(path_type=Path), required=True,
              help="The HTML file to write (self-contained, opens offline).")
def report_cmd(store_path: Path, since: str | None, html_out: Path) -> None:
    """A report for a plant manager: inventory by zone and role, incidents, breaches by model and
    device, top talkers, learning state."""
    from plantwatch.core.store.database import Store, StoreError
    from plantwatch.core.views.export.evidence import ExportError
    from plantwatch.core.views.export.plant_report import last_packet_ns, parse_since, write_report

    try:
        with Store(store_path, readonly=True) as store:
            try:
                since_ns = parse_since(since, last_packet_ns(store)) if since else None
            except ValueError as e:
                fail(str(e))
            data = write_report(store, str(html_out), since_ns)
    except (StoreError, ExportError) as e:
        fail(str(e))
    click.echo(f"{html_out}: {data['devices_total']} devices, {len(data['incidents'])} incident(s), "
               f"{data['breaches']} breach(es)")


@click.command("relocate")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--store", "store_path", type=STORE, required=True,
              help="The store whose captures were moved.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
def relocate_cmd(folder: Path, store_path: Path, dry_run: bool) -> None:
    """Point a store at the folder its capture files were moved to (each file verified by its
    content fingerprint), so packet decodes and evidence exports find them again."""
    from plantwatch.core.store.database import Store
    from plantwatch.core.store.errors import StoreError
    from plantwatch.core.store.relocate import relocate

    try:
        with Store(store_path) as store:
            res = relocate(store, folder, dry_run=dry_run)
    except StoreError as e:
        fail(str(e))
    verb = "would point" if dry_run else "now points"
    for old, new in res.moved:
        click.echo(f"{old} -> {new}")
    for p in res.differ:
        note(f"{p}: {folder} holds a file of that name with other content; left as it was")
    for p in res.missing:
        note(f"{p}: not in {folder}")
    click.echo(f"{store_path} {verb} at {len(res.moved)} moved capture(s); {len(res.in_place)} already "
               f"in place, {len(res.differ) + len(res.missing)} not found")
    if not res.moved and (res.differ or res.missing):
        fail(f"no capture of {store_path} is in {folder}")
