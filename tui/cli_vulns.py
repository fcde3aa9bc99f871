"""`plantwatch vulns import PATH`: advisories the user downloaded (CISA ICS advisories in CSAF
2.0 JSON, NVD CVE JSON 2.0 feeds; a file or a directory) into a store, and `vulns list`: the
identified devices they match. Nothing is fetched from the network."""

from __future__ import annotations

import os
from pathlib import Path

import click

from plantwatch.tui.cli_support import STORE, fail, note

STORE_ENV = "PLANTWATCH_STORE"


def _store_path(store_path: Path | None) -> Path:
    store_path = store_path or (Path(os.environ[STORE_ENV]) if os.environ.get(STORE_ENV) else None)
    if store_path is None:
        fail(f"which store? give --store FILE or set {STORE_ENV}")
    return store_path


@click.group()
def vulns() -> None:
    """Known vulnerabilities of identified devices, from advisories imported offline."""


@vulns.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--store", "store_path", type=STORE,
              help=f"The store to import into (default: ${STORE_ENV}).")
def import_cmd(path: Path, store_path: Path | None) -> None:
    """Import CSAF 2.0 advisories or NVD CVE 2.0 feeds from PATH (a file or a directory)."""
    from plantwatch.core.store.database import Store, StoreError
    from plantwatch.core.store.vulns import AdvisoryError, import_path
    from plantwatch.core.views.console.identity import vulnerabilities

    try:
        with Store(_store_path(store_path)) as st:
            res = import_path(st, path)
            found = vulnerabilities(st)
    except (AdvisoryError, StoreError) as e:
        fail(str(e))
        return
    for line in res.skipped:
        note(line)
    cves = {m.cve for ms in found.values() for m in ms}
    click.echo(f"imported {res.advisories} advisories ({res.products} affected products) from {res.files} files;"
               f" {len(found)} devices match {len(cves)} CVEs")


@vulns.command("list")
@click.option("--store", "store_path", type=STORE,
              help=f"The store to read (default: ${STORE_ENV}).")
def list_cmd(store_path: Path | None) -> None:
    """The identified devices that imported advisories name, with CVE, CVSS and advisory."""
    from plantwatch.core.store.database import Store, StoreError
    from plantwatch.core.views.console.identity import vulnerabilities
    from plantwatch.core.views.textsafe import printable

    try:
        with Store(_store_path(store_path), readonly=True) as st:
            found = vulnerabilities(st)
    except StoreError as e:
        fail(str(e))
        return
    for dev, ms in sorted(found.items()):
        for m in ms:
            where = f" ({printable(m.component)})" if m.component else ""
            score = f"{m.cvss:.1f}" if m.cvss is not None else "-"
            fw = f" firmware {printable(m.firmware)}" if m.firmware else ""
            click.echo(f"{dev}{where}\t{m.cve}\tCVSS {score}\t{m.advisory_id}\t{printable(m.product)}{fw}"
                       f" ({m.versions})")
