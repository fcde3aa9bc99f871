"""tshark as the test oracle: per-frame field values of a capture."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HAVE_TSHARK = shutil.which("tshark") is not None
needs_tshark = [
    pytest.mark.tshark,
    pytest.mark.skipif(not HAVE_TSHARK, reason="tshark not installed"),
]


def tshark_fields(path: str | Path, fields: list[str], display_filter: str | None = None,
                  extra: list[str] | None = None) -> dict[int, dict[str, str]]:
    """{frame.number: {field: value}}; several occurrences are joined with ','; absent is ''."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a",
           "-E", "aggregator=,", "-E", "separator=\t", "-e", "frame.number"]
    for f in fields:
        cmd += ["-e", f]
    if display_filter:
        cmd += ["-Y", display_filter]
    cmd += extra or []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows: dict[int, dict[str, str]] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        parts += [""] * (len(fields) + 1 - len(parts))
        rows[int(parts[0])] = dict(zip(fields, parts[1:], strict=True))
    return rows
