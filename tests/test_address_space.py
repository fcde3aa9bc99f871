"""`plantwatch analyze` under an address-space limit (issue 17.6): with `ulimit -v 1048576` it runs
(the thread pools and malloc arenas are capped before polars loads) or says, in one line, which
limit stopped it; it never dies of SIGABRT with no message. The limit is set in the child only
(preexec_fn), so the test process keeps its own."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bench.hostile_dns import records
from plantwatch.core.synth.pcapwriter import write_pcapng

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "data" / "real"
GIB = 1 << 30


def _analyze_limited(cap: Path, limit: int, store: Path) -> subprocess.CompletedProcess:
    def limit_child() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run([sys.executable, "-m", "plantwatch", "analyze", str(cap), "--store",
                           str(store), "--json"], preexec_fn=limit_child, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def _ran_or_said_why(r: subprocess.CompletedProcess) -> None:
    assert r.returncode >= 0, f"killed by signal {-r.returncode}: {r.stderr[-500:]}"
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "address-space limit" in lines[0], r.stderr


@pytest.mark.parametrize("name", ["modbus_mixed_mb2.pcap", "s7comm_diag_read.pcapng"])
def test_real_capture_under_one_gib(tmp_path: Path, name: str) -> None:
    r = _analyze_limited(REAL / name, GIB, tmp_path / "s.sqlite")
    _ran_or_said_why(r)
    assert r.returncode == 0, r.stderr


def test_batch_heavy_capture_under_one_gib(tmp_path: Path) -> None:
    """5,000 large DNS responses: on main this aborted (Rust allocation failure, exit -6) at a
    resident size far below the limit."""
    cap = tmp_path / "dns.pcapng"
    write_pcapng(cap, records(5000, 64, 253))
    r = _analyze_limited(cap, GIB, tmp_path / "s.sqlite")
    _ran_or_said_why(r)
    assert r.returncode == 0, r.stderr


def test_a_limit_too_small_is_named_in_one_line(tmp_path: Path) -> None:
    r = _analyze_limited(REAL / "s7comm_snap7.pcap", 300 << 20, tmp_path / "s.sqlite")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "plantwatch: the address-space limit (ulimit -v 307200 kB, 300 MiB) is too small: "
        "plantwatch needs at least 1024 MiB of address space"]
    assert not (tmp_path / "s.sqlite").exists()
