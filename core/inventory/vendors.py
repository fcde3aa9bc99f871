"""One canonical name per vendor (the CPE 2.3 vendor token), from the documented alias table
core/data/vendor_aliases.tsv: advisories and devices spell makers differently."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_SUFFIXES = {"inc", "corp", "corporation", "co", "ltd", "gmbh", "ag", "sa", "llc", "kg"}


def normalise(name: str) -> str:
    """Lower case, punctuation to spaces, legal-form suffixes dropped."""
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    while words and words[-1] in _SUFFIXES:
        words.pop()
    return " ".join(words)


@cache
def aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    text = resources.files("plantwatch.core.data").joinpath("vendor_aliases.tsv").read_text("utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            canon, alias = line.split("\t", 1)
            out[normalise(alias)] = canon.strip()
            out.setdefault(normalise(canon), canon.strip())
    return out


def canonical(name: str | None) -> str:
    """The canonical vendor of a spelling; an unknown vendor keeps its normalised spelling with
    spaces as underscores (as CPE vendor tokens are written)."""
    if not name:
        return ""
    n = normalise(name)
    return aliases().get(n, n.replace(" ", "_"))
