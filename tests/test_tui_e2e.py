"""End to end: `plantwatch demo` in a real terminal (tmux), keys pressed, the screen read back."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tui_support import ATTACKER, ROOT, needs_demo

pytestmark = [
    needs_demo,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


def _plantwatch() -> list[str]:
    exe = Path(sys.executable).parent / "plantwatch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "plantwatch"]


class Tmux:
    def __init__(self, name: str, width: int, height: int) -> None:
        self.name = name
        self.size = (width, height)

    def start(self, command: str, env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        shell = f"cd {shlex.quote(str(ROOT))} && env {exports} {command}; echo PLANTWATCH-EXITED:$?; sleep 60"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(self.size[0]),
                        "-y", str(self.size[1]), shell], check=True)

    def screen(self, escapes: bool = False) -> str:
        cmd = ["tmux", "capture-pane", "-p", "-t", self.name] + (["-e"] if escapes else [])
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never appeared; the screen was:\n{text}")
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def tmux():
    t = Tmux(f"plantwatch-e2e-{os.getpid()}", 100, 30)
    yield t
    t.kill()


def test_demo_in_a_real_terminal(tmux: Tmux, tmp_path: Path) -> None:
    store = tmp_path / "demo.sqlite"
    cmd = " ".join(shlex.quote(c) for c in _plantwatch() + ["demo", "--speed", "200000", "--store", str(store)])
    tmux.start(cmd, {"TERM": "xterm-256color", "NO_COLOR": "1"})
    first = tmux.wait_for(r"learning|detecting", timeout=60)
    assert "demo: incident.pcapng.gz" in first                  # the status bar names the source
    tmux.wait_for(r"\b1 inc\b", timeout=240)                   # the incident popped up
    screen = tmux.wait_for(r"\d\.\d\d +" + re.escape(ATTACKER))   # ... and its device, scored, in the list
    assert re.search(r"/ Filter", screen) and "? Help" in screen  # keys in the footer
    colours = re.findall(r"\x1b\[[0-9;]*[34]8;[25];", tmux.screen(escapes=True))
    assert not colours                                          # NO_COLOR is respected
    tmux.keys("i")
    tmux.wait_for(r"incident\(s\), highest score first")
    tmux.keys("Enter")
    screen = tmux.wait_for(r"ATT&CK +T08")                     # the incident, loaded
    assert "new device" in screen and "Narrative" in screen
    tmux.keys("o")
    screen = tmux.wait_for(r"ICS served")                      # the device screen's identity block
    assert "DESKTOP-4H7KQ2P" in screen and "[new]" in screen
    tmux.keys("e")
    screen = tmux.wait_for(r"connections — device:" + re.escape(ATTACKER))
    tmux.keys("?")
    tmux.wait_for(r"plantwatch — keys")
    tmux.keys("Escape")
    tmux.wait_for(r"connections — device:")
    for back_to in (r"ICS served", r"ATT&CK +T08", r"highest score first", r"devices, sorted by score"):
        tmux.keys("Escape")                                     # back, one screen at a time
        tmux.wait_for(back_to)
    tmux.keys("q")
    screen = tmux.wait_for(r"PLANTWATCH-EXITED:0", timeout=30)
    assert "Traceback" not in screen
