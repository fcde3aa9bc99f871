"""The `plantwatch` command line. Textual is imported only by the commands that open the console."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from core.batch import CaptureError
from core.store import StoreError
from core.zones import ZonesError


def _fail(message: str) -> None:
    click.echo(f"plantwatch: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="plantwatch")
def main() -> None:
    """plantwatch: learn the pattern of life of a plant network and explain what deviates."""


@main.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--zones", "zones_file", type=click.Path(path_type=Path), help="Zones TOML file.")
@click.option("--store", "store_path", type=click.Path(path_type=Path),
              help="SQLite store to create or append to (default: a temporary one).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print the report as JSON lines, one record each.")
def analyze(captures: tuple[Path, ...], zones_file: Path | None, store_path: Path | None,
            as_json: bool, as_jsonl: bool) -> None:
    """Analyse capture files (pcap, pcapng, .gz, or directories of them) with no console."""
    from core import report
    from core.engine import Ingest
    from core.store import Store
    from core.zones import Zones

    if as_json and as_jsonl:
        _fail("--json and --jsonl are exclusive")
    tmp = None
    try:
        zones = Zones.load(zones_file) if zones_file else Zones.default()
        if store_path is None:
            tmp = tempfile.TemporaryDirectory(prefix="plantwatch-")
            store_path = Path(tmp.name) / "analyze.sqlite"
        with Store(store_path) as store:
            with _progress() as progress:
                result = Ingest(store, zones).run(
                    captures, on_progress=progress,
                    on_warning=lambda m: click.echo(f"plantwatch: warning: {m}", err=True))
            data = report.build(store)
    except (CaptureError, StoreError, ZonesError) as e:
        _fail(str(e))
    finally:
        if tmp is not None:
            tmp.cleanup()
    for info in result.captures:
        if info.skipped:
            click.echo(f"plantwatch: {info.path}: already in the store; not counted again", err=True)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif as_jsonl:
        for rec in report.jsonl_records(data):
            click.echo(json.dumps(rec, ensure_ascii=False))
    else:
        from tui.summary import print_summary

        print_summary(data)


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress():
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return _NoProgress()
    from tui.progress import ByteProgress

    return ByteProgress()


if __name__ == "__main__":  # pragma: no cover
    main()
