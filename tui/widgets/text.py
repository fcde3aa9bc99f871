"""Turning values into what a cell shows. Everything from the wire goes through `plain`."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

from plantwatch.core.views.queries import fmt_ts
from plantwatch.core.views.textsafe import printable

_BARS = "▁▂▃▄▅▆▇█"


def plain(value: object, style: str = "", limit: int = 200) -> Text:
    """A value as literal text: control characters escaped, never parsed as markup."""
    t = Text(printable("" if value is None else str(value), limit), end="")
    if style:
        t.stylize(style)   # a span, not a base style: Textual keeps the spacing of appended texts
    return t


def spark(values: tuple[int, ...] | list[int]) -> Text:
    if not values:
        return Text("", end="")
    top = max(values) or 1
    t = Text("".join(" " if v == 0 else _BARS[min(7, (v * 8 - 1) // top)] for v in values), end="")
    t.stylize("green")
    return t


def score_text(score: float | None) -> Text:
    if score is None:
        return plain("  -", style="dim")
    return plain(f"{score:.2f}", style="bold red" if score >= 0.7 else "yellow" if score >= 0.4 else "")


def when(ts: int | None, date: bool = True) -> Text:
    return Text(fmt_ts(ts, date=date), end="")


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def shown_width(values, limit: int = 200) -> int:
    """The widest of `values` as `plain(value, limit=limit)` shows it (escaped, cut), in cells:
    lets a worker size a table column over every row without building the rows' Text cells."""
    return max((cell_len(printable("" if v is None else str(v), limit)) for v in values), default=0)
