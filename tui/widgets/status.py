"""The status bar: source, packet clock, packets/s, drops, learning or detecting, and counts."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from plantwatch.core.views.queries import Status, fmt_ts
from plantwatch.core.views.textsafe import printable
from plantwatch.tui.live import PipelineStatus


@dataclass(frozen=True, slots=True)
class StatusView:
    pipeline: PipelineStatus
    store: Status | None


def render_status(v: StatusView) -> Text:
    p, s = v.pipeline, v.store
    clock = p.packet_clock if p.packet_clock is not None else (s.last_ts if s else None)
    phase = p.phase
    if phase == "learning" and p.progress is not None:
        phase = f"learning {p.progress * 100:.0f}%"
    elif phase == "idle" and s is not None:
        phase = "detecting" if s.detection and s.breaches else "store"
    if p.speed is not None and p.phase in ("detecting", "paused"):
        phase += f" x{p.speed:g}"
    parts = [
        printable(p.source, 28) or "store",
        fmt_ts(clock)[5:] if clock is not None else "-",
        phase,
    ]
    if s is not None:
        parts.append(f"{s.devices:,} dev {s.breaches:,} br {s.incidents:,} inc")
    parts += [f"{p.pps:,.0f} pkt/s", "drops -" if p.drops is None else f"drops {p.drops:,}"]
    t = Text(" " + " │ ".join(parts), end="", no_wrap=True, overflow="ellipsis")
    if p.phase == "error":
        t.append(" │ " + printable(p.message, 120), style="bold red")
    return t


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; }
    """

    def show(self, view: StatusView) -> None:
        self.update(render_status(view))
