"""HTML rendering for the exported reports: one jinja2 environment over the templates in
core/data/ (autoescaped; wire strings also get their control characters escaped)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2

from plantwatch.core.views.textsafe import printable

TEMPLATES = ("export_base.html.j2", "export_incident.html.j2", "export_report.html.j2")


def _wire(s: object, limit: int = 4000) -> str:
    return printable(None if s is None else str(s), limit)


def _num(v: object) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower() if isinstance(v, bool) else "-"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v):,}"
    return _wire(v)


@cache
def _env() -> jinja2.Environment:
    data = resources.files("plantwatch.core").joinpath("data")

    def load(name: str) -> str | None:
        return data.joinpath(name).read_text(encoding="utf-8") if name in TEMPLATES else None

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["wire"] = _wire
    env.filters["num"] = _num
    env.filters["when"] = lambda iso: "-" if not iso else str(iso)[:19].replace("T", " ")
    return env


def render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)
