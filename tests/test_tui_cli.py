"""The console's commands fail plainly (one line, exit 2, no traceback) when they cannot start."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from plantwatch.tui.cli import main


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env or {})


def test_console_needs_a_store(tmp_path: Path) -> None:
    r = run("console", env={"PLANTWATCH_STORE": ""})
    assert r.exit_code == 2 and "--store" in r.output
    r = run("console", "--store", str(tmp_path / "nope.sqlite"))
    assert r.exit_code == 2 and "no such store" in r.output and "Traceback" not in r.output


def test_demo_without_captures(tmp_path: Path) -> None:
    r = run("demo", "--data", str(tmp_path))
    assert r.exit_code == 2
    assert "demo captures are missing" in r.output and "demo_data/generate.py" in r.output


def test_open_a_missing_capture(tmp_path: Path) -> None:
    r = run("open", str(tmp_path / "missing.pcap"))
    assert r.exit_code == 2 and "missing.pcap" in r.output and "Traceback" not in r.output


def test_live_on_an_unknown_interface() -> None:
    r = run("live", "-i", "no-such-if0")
    assert r.exit_code == 2 and "Traceback" not in r.output
    if shutil.which("dumpcap"):
        assert "no interface 'no-such-if0'" in r.output or "may not capture" in r.output
    else:
        assert "dumpcap is not installed" in r.output


def test_help_lists_the_console_commands() -> None:
    r = run("--help")
    for cmd in ("demo", "open", "console", "live", "analyze"):
        assert cmd in r.output


def test_open_live_and_demo_take_a_models_file(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('["net.failed_internal"]\nmin_failures = "x"\n')
    capture = Path(__file__).parent / "data" / "real" / "s7comm_snap7.pcap"
    for args in (("open", str(capture)), ("live", "-i", "no-such-if0"), ("demo",)):
        r = run(*args, "--models", str(bad))
        assert r.exit_code == 2 and "Traceback" not in r.output, (args, r.output)
        assert r.output.strip().splitlines() == [f"plantwatch: {bad}: 'net.failed_internal.min_failures' must be int"]
