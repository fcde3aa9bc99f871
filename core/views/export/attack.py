"""ATT&CK for ICS technique names, from core/data/attack_ics.toml (the models give ids)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources


@cache
def technique_names() -> dict[str, str]:
    text = resources.files("plantwatch.core").joinpath("data/attack_ics.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text)["techniques"])


def technique(tid: str) -> dict[str, str]:
    """{"id", "name"}; an id missing from the table keeps its id as its name."""
    return {"id": tid, "name": technique_names().get(tid, tid)}
