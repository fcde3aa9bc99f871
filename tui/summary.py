"""The human summary of `plantwatch analyze`: tables of plain text, never markup."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from plantwatch.core.views.textsafe import printable


def _t(v: object) -> Text:
    """A cell: wire strings are escaped and shown literally."""
    if v is None:
        return Text("-", style="dim")
    return Text(printable(str(v)))


def _when(iso: str | None, full: bool = True) -> str:
    """'2026-03-04 13:12', or '03-04 13:12' where space is short."""
    if not iso:
        return "-"
    text = iso.replace("T", " ")[:16]
    return text if full else text[5:]


PIPE_WIDTH = 200
# Rows of each per-device or per-source table; the rest is counted ("and N more"), and
# `analyze --json` has them all (report_stream.capped builds the summary's report).
SUMMARY_ROWS = 1000


def _more(con: Console, report: dict[str, Any], key: str, what: str) -> None:
    n = report.get("more", {}).get(key, 0)
    if n:
        con.print(Text(f"and {n:,} more {what} (all of them: plantwatch analyze --json)", style="dim"))


def print_summary(report: dict[str, Any], console: Console | None = None) -> None:
    # not a terminal (piped, redirected): Rich would wrap and cut at 80 columns; a file gets
    # whole lines. COLUMNS, when set, still wins.
    con = console or (Console() if sys.stdout.isatty() or os.environ.get("COLUMNS")
                      else Console(width=PIPE_WIDTH))
    caps = report["captures"]
    n = sum(c["packets"] for c in caps)
    n_dev = len(report["devices"]) + report.get("more", {}).get("devices", 0)
    con.print(Text(f"{len(caps)} capture(s), {n:,} packets, {n_dev} devices", style="bold"))
    for c in caps:
        for w in c["warnings"]:
            con.print(Text(f"warning: {printable(w)}", style="yellow"))

    wide = con.width >= 110
    inv = Table(title="Inventory", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                padding=(0, 1))
    inv.add_column("address", no_wrap=True, min_width=17 if wide else 15)
    inv.add_column("name", no_wrap=True, overflow="ellipsis", max_width=30 if wide else 14)
    inv.add_column("vendor", no_wrap=True, overflow="ellipsis", max_width=22 if wide else 11)
    inv.add_column("zone", no_wrap=True, overflow="ellipsis", max_width=14 if wide else 9)
    inv.add_column("role", no_wrap=True, min_width=11)
    inv.add_column("first seen", no_wrap=True, min_width=16 if wide else 11)
    if wide:
        inv.add_column("last seen", no_wrap=True, min_width=16)
    for d in report["devices"]:
        cells = [_t(d["address"] or d["mac"]), _t(d["name"]), _t(d["vendor"]), _t(d["zone"]),
                 _t(d["role"]), _t(_when(d["first_seen"], wide))]
        if wide:
            cells.append(_t(_when(d["last_seen"], wide)))
        inv.add_row(*cells)
    con.print(inv)
    _more(con, report, "devices", "devices")

    prot = Table(title="Sessions by protocol", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("protocol", "transport", "sessions", "failed", "packets", "bytes"):
        prot.add_column(col, justify="right" if col not in ("protocol", "transport") else "left")
    for p in report["sessions_by_protocol"]:
        prot.add_row(_t(p["protocol"]), _t(p["transport"]), f"{p['sessions']:,}", f"{p['failed']:,}",
                     f"{p['packets']:,}", f"{p['bytes']:,}")
    con.print(prot)

    if report["ics_operations"]:
        ops = Table(title="ICS operations by class and source", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("source", "class", "protocol", "operation", "count", "targets"):
            ops.add_column(col, justify="right" if col in ("count", "targets") else "left")
        for o in report["ics_operations"]:
            ops.add_row(_t(o["source"]), _t(o["class"]), _t(o["protocol"]),
                        _t(f"{o['name']} ({o['code']})"), f"{o['count']:,}", str(o["targets"]))
        con.print(ops)
        _more(con, report, "ics_operations", "rows of ICS operations")

    if report["failed_connections"]:
        fail = Table(title="Failed connections by source", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("source", "failed", "refused", "unanswered", "unreachable", "targets", "ports"):
            fail.add_column(col, justify="left" if col in ("source", "ports") else "right")
        for f in report["failed_connections"]:
            ports = ", ".join(str(p) for p in f["ports"][:12]) + (" …" if len(f["ports"]) > 12 else "")
            fail.add_row(_t(f["source"]), str(f["failed"]), str(f["refused"]), str(f["unanswered"]),
                         str(f["unreachable"]), str(f["targets"]), _t(ports))
        con.print(fail)
        _more(con, report, "failed_connections", "sources of failed connections")
