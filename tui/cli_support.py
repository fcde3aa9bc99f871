"""What the `plantwatch` commands share: the one-line failure, notes on stderr, loading the zones
and the models file, the temporary store, the progress bar and the plain-text detection summary."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from plantwatch.core.inventory.zones import Zones


class StoreLocation(click.ParamType):
    """--store: an SQLite file (a Path) or a PostgreSQL DSN `postgresql://...` (kept as text:
    a Path would fold its `//`)."""

    name = "store"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201
        from plantwatch.core.store.engine.pg_store import is_dsn

        if isinstance(value, Path) or not is_dsn(value):
            return Path(value)
        return str(value)


STORE = StoreLocation()


def store_label(location: str | Path) -> str:
    """How a console names its store: the file name, or the DSN without its password."""
    from plantwatch.core.store.engine.pg_store import is_dsn, redact

    return redact(str(location)) if is_dsn(location) else Path(location).name


def fail(message: str) -> None:
    click.echo(f"plantwatch: {message}", err=True)
    sys.exit(2)


def note(message: str) -> None:
    click.echo(f"plantwatch: {message}", err=True)


def say_wait(message: str) -> None:
    """Another process holds the store: said once on stderr, then this command waits for it."""
    note(f"{message} ...")


def load_zones(zones_file: Path | None) -> Zones:
    """The zones file given, else the default zones (raises ZonesError, one line)."""
    from plantwatch.core.inventory.zones import Zones

    return Zones.load(zones_file) if zones_file else Zones.default()


def load_models(models_file: Path | None) -> dict:
    """The detection config, a --models file overlaid (raises ConfigError, one line); a
    deprecated file form gets one note on stderr."""
    from plantwatch.core.detection.models import load_config

    return load_config(models_file, on_note=note)


def check_store(path: Path) -> None:
    """Fail (one line, exit 2) unless `path` is a plantwatch store that can be read: a console
    must not start on a file it can only show as "loading..." forever."""
    import sqlite3

    from plantwatch.core.store.database import Store
    from plantwatch.core.store.errors import StoreError

    try:
        store = Store(path, readonly=True)
    except StoreError as e:
        fail(str(e))
    try:
        has = store.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'captures'").fetchone()
    except StoreError as e:
        fail(str(e))
    except sqlite3.DatabaseError as e:
        fail(f"{path}: not a plantwatch store ({str(e).splitlines()[0] if str(e) else 'unreadable'})")
    finally:
        store.close()
    if has is None:
        fail(f"{path}: not a plantwatch store (no plantwatch tables in it)")


@contextmanager
def store_file(store_path: Path | None, name: str) -> Iterator[Path]:
    """The store file given, else one in a temporary directory removed afterwards."""
    if store_path is not None:
        yield store_path
        return
    with tempfile.TemporaryDirectory(prefix="plantwatch-") as tmp:
        yield Path(tmp) / name


def print_detection(data: dict) -> None:
    """Incidents, breaches and the threat ranking, as plain text (wire strings escaped)."""
    from plantwatch.core.views.textsafe import printable

    det = data["detection"]
    learning = [m["name"] for m in det["models"] if m["state"] == "learning"]
    click.echo(f"\nBaseline: {det['baseline_statement']}")
    if learning:
        click.echo(f"Still learning (no history yet): {', '.join(learning)}")
    pairs = [m["name"] for m in det["models"] if m["state"] == "pairs"]
    if pairs:
        click.echo(f"Judging only pairs with their own history: {', '.join(pairs)}")
    for inc in data["incidents"]:
        click.echo(f"\nIncident {inc['score']:.2f}: {printable(inc['title'])}")
        click.echo("  phases: " + " -> ".join(p["phase"] for p in inc["phases"])
                   + f"   ATT&CK: {', '.join(inc['attack_ids'])}")
        click.echo("  " + printable(inc["narrative"], 4000))
    if data["breaches"]:
        click.echo(f"\nBreaches ({len(data['breaches'])}):")
        for b in data["breaches"]:
            when = (b["first_seen"] or "")[:19].replace("T", " ")
            pk = b["evidence"]["packets"][:3]
            frames = ", ".join(f"#{p['frame']}" for p in pk)
            click.echo(f"  {b['score']:.2f} {when} {b['model']} [{b['device']}]")
            click.echo(f"       {printable(b['explanation'], 1000)} (frames {frames or '-'})")
    else:
        click.echo("\nNo breach.")
    if data["threat"]:
        top = ", ".join(f"{t['device']} {t['score']:.2f}" for t in data["threat"][:5])
        click.echo(f"\nThreat ranking: {top}")


class NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar() -> AbstractContextManager:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return NoProgress()
    from plantwatch.tui.progress import ByteProgress

    return ByteProgress()
