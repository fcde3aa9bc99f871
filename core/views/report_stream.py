"""The analyze report written as it is read: memory of one row, whatever the store holds.

`report.build(store, lazy=True)` gives the lists that grow with the store (a row per device, per
ICS source, per failing client) as iterators over open cursors. `write_json` writes the report
with exactly the text `json.dumps(report, indent=2, ensure_ascii=False)` gives for the built
lists, one list item at a time; `jsonl_records` (report.jsonl_records) already walks it in order.
`capped` is the human summary's view: at most `limit` rows of each such list, and how many more.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from plantwatch.core.store.database import Store
from plantwatch.core.views.report import LAZY


def _dumps(value: Any, indent: str) -> str:
    """`value` as json.dumps(indent=2) writes it `indent` deep."""
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + indent)


def iter_json(report: dict[str, Any]) -> Iterator[str]:
    """Pieces of the report's JSON text (no final newline), lazy lists consumed as written."""
    yield "{"
    for k, (key, value) in enumerate(report.items()):
        yield ("\n  " if k == 0 else ",\n  ") + json.dumps(key, ensure_ascii=False) + ": "
        if isinstance(value, (list, tuple, dict, str, int, float, bool)) or value is None:
            yield _dumps(value, "  ")
            continue
        first = True
        for item in value:   # an iterator: json.dumps's layout of a non-empty list, item by item
            yield ("[\n    " if first else ",\n    ") + _dumps(item, "    ")
            first = False
        yield "[]" if first else "\n  ]"
    yield "\n}" if report else "}"


def write_json(report: dict[str, Any], write: Callable[[str], object]) -> None:
    """Write the report's JSON text (and a newline) through `write`, piece by piece."""
    for piece in iter_json(report):
        write(piece)
    write("\n")


def _count_rest(rows: Iterable[Any]) -> int:
    return sum(1 for _ in rows)


def capped(store: Store, report: dict[str, Any], limit: int) -> dict[str, Any]:
    """`report` (built lazy) with its LAZY lists cut to `limit` rows, and `more`: how many rows
    each left out. Devices are counted in SQL; the other lists are aggregates already being read."""
    out = dict(report)
    more: dict[str, int] = {}
    for key in LAZY:
        rows = iter(report[key])
        out[key] = list(islice(rows, limit))
        if len(out[key]) < limit:
            more[key] = 0
        elif key == "devices":
            close = getattr(rows, "close", None)
            if close is not None:
                close()
            total = int(store.execute("SELECT COUNT(*) FROM devices WHERE site = ?", (store.site,)).fetchone()[0])
            more[key] = total - limit
        else:
            more[key] = _count_rest(rows)
    out["more"] = more
    return out
