"""The threat chart as inline SVG: each device's hourly threat score (device_scores) as a line.

Plain SVG text, no script and no external reference, so a report opens offline; numbers are
rounded so the same scores give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

HOUR_NS = 3_600_000_000_000
COLOURS = ("#c0392b", "#2471a3", "#239b56", "#b7950b", "#7d3c98", "#ca6f1e", "#17a589", "#5d6d7e")


def _label(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%m-%d %H:00")


def threat_svg(series: Sequence[tuple[str, Sequence[tuple[int, float]]]], start_ns: int, end_ns: int,
               width: int = 860, height: int = 260, title: str = "Threat score per hour") -> str:
    """`series`: (device, [(hour ts ns, score 0..1)]) in legend order; hours missing score 0."""
    left, right, top, bottom = 46, 180, 24, 40
    pw, ph = width - left - right, height - top - bottom
    start = start_ns - start_ns % HOUR_NS
    hours = max(1, (end_ns - start) // HOUR_NS + 1)

    def x(ts: int) -> float:
        return left + pw * ((ts - start) / HOUR_NS) / max(1, hours - 1)

    def y(score: float) -> float:
        return top + ph * (1.0 - max(0.0, min(1.0, score)))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="threat-chart" role="img" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f"<title>{escape(title)}</title>",
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#999"/>']
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        yy = y(v)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    step = max(1, hours // 8)
    for h in range(0, hours, step):
        ts = start + h * HOUR_NS
        out.append(f'<text x="{x(ts):.1f}" y="{top + ph + 16}" text-anchor="middle">{_label(ts)}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">hour (UTC, packet time)</text>')
    for i, (device, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        by_hour = {int(ts) - int(ts) % HOUR_NS: float(s) for ts, s in points}
        pts = " ".join(f"{x(start + h * HOUR_NS):.1f},{y(by_hour.get(start + h * HOUR_NS, 0.0)):.1f}"
                       for h in range(hours))
        out.append(f'<polyline class="series" data-device="{escape(device)}" fill="none" stroke="{colour}" '
                   f'stroke-width="2" points="{pts}"/>')
        ly = top + 14 * i + 6
        out.append(f'<rect x="{left + pw + 12}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        peak = max(by_hour.values(), default=0.0)
        out.append(f'<text x="{left + pw + 26}" y="{ly + 1}">{escape(device)} (peak {peak:.2f})</text>')
    out.append("</svg>")
    return "\n".join(out)
