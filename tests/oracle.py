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


# Preferences that make tshark verify checksums, for tests of the frames we build.
CHECK_CHECKSUMS = {"ip.check_checksum": "TRUE", "tcp.check_checksum": "TRUE", "udp.check_checksum": "TRUE"}


def tshark_fields(path: str | Path, fields: list[str], display_filter: str | None = None,
                  extra: list[str] | None = None, *, aggregator: str = ",", separator: str = "\t",
                  prefs: dict[str, str] | None = None) -> dict[int, dict[str, str]]:
    """{frame.number: {field: value}}; several occurrences are joined with `aggregator`; absent
    is ''. Pass a separator and aggregator that cannot occur in the values (e.g. \\x1e, \\x1f)
    when comparing free text such as DNS names."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a",
           "-E", f"aggregator={aggregator}", "-E", f"separator={separator}", "-e", "frame.number"]
    for k, v in (prefs or {}).items():
        cmd += ["-o", f"{k}:{v}"]
    asked = [f for f in fields if f != "frame.number"]  # tshark leaves a repeated field empty
    for f in asked:
        cmd += ["-e", f]
    if display_filter:
        cmd += ["-Y", display_filter]
    cmd += extra or []
    out = subprocess.run(cmd, check=True, capture_output=True).stdout.decode("utf-8", "replace")
    rows: dict[int, dict[str, str]] = {}
    for line in out.split("\n"):
        if not line:
            continue
        parts = line.split(separator)
        parts += [""] * (len(asked) + 1 - len(parts))
        row = dict(zip(asked, parts[1:], strict=True))
        if len(asked) < len(fields):
            row["frame.number"] = parts[0]
        rows[int(parts[0])] = row
    return rows


def tshark_pdml(path: str | Path, display_filter: str) -> list[str]:
    """The PDML text of each packet matching `display_filter`, in frame order: for values that
    tshark shows in its tree only, without a field name (BACnet character strings, say)."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "pdml", "-Y", display_filter]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout.decode("utf-8", "replace")
    return out.split("<packet>")[1:]
