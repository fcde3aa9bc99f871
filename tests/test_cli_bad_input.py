"""Bad input to the console's commands: analyze's one line and exit 2, before any console starts
(each case here used to open an empty console, or "loading..." forever, and exit 0)."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from plantwatch.tui.cli import main


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env or {})


def one_line(r) -> str:
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    assert "Traceback" not in r.output
    return lines[0]


def test_open_a_text_file_says_what_analyze_says(tmp_path: Path) -> None:
    txt = tmp_path / "notacapture.txt"
    txt.write_text("hello\n")
    a, o = run("analyze", str(txt)), run("open", str(txt))
    assert a.exit_code == o.exit_code == 2
    assert one_line(o) == one_line(a) == f"plantwatch: {txt}: not a pcap or pcapng file"


def test_open_bad_learn_capture_empty_and_gzip_text(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    r = run("open", str(empty))
    assert r.exit_code == 2 and one_line(r) == f"plantwatch: {empty}: empty file"
    gz = tmp_path / "text.pcap.gz"
    gz.write_bytes(gzip.compress(b"not a capture at all"))
    r = run("open", "--learn", str(gz), str(gz))
    assert r.exit_code == 2 and "not a pcap or pcapng file" in one_line(r)


def test_console_on_files_that_are_not_stores(tmp_path: Path) -> None:
    text = tmp_path / "notastore"
    text.write_text("not a database, but long enough to look like something " * 100)
    r = run("console", "--store", str(text))
    assert r.exit_code == 2 and one_line(r).startswith(f"plantwatch: {text}: not a plantwatch store")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    r = run("console", "--store", str(other))
    assert r.exit_code == 2 and one_line(r) == f"plantwatch: {other}: not a plantwatch store (no plantwatch tables in it)"
    r = run(env={"PLANTWATCH_STORE": str(text)})                # no command: the configured store
    assert r.exit_code == 2 and "not a plantwatch store" in one_line(r)


def test_live_and_demo_refuse_bad_input_before_starting(tmp_path: Path) -> None:
    text = tmp_path / "notastore"
    text.write_text("x" * 5000)
    r = run("demo", "--speed", "0", "--store", str(tmp_path / "new.sqlite"))
    assert r.exit_code == 2 and "--speed 0" in one_line(r)
    r = run("demo", "--store", str(text))
    assert r.exit_code == 2 and "already exists" in one_line(r)
    r = run("live", "-i", "lo", "--zones", str(tmp_path / "nozones.toml"))
    assert r.exit_code == 2 and "nozones.toml" in one_line(r)
    assert text.read_text() == "x" * 5000                        # nothing written into what was given


def test_piped_analyze_is_not_cut_to_80_columns(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.tui_support import hostile_capture

    cap = hostile_capture(tmp_path / "h.pcapng")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "-m", "plantwatch", "analyze", str(cap)], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert max(len(line) for line in out.splitlines()) > 80
    row = next(line for line in out.splitlines() if "10.0.0.66" in line and "workstation" in line.lower()
               or "10.0.0.66" in line)
    assert "…" not in row                                           # the row is whole, not cut
