"""`plantwatch analyze --zeek`: Zeek logs scored end to end; the same breaches as the capture."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.pipeline.zeek.reader import record_at
from plantwatch.tui.cli import main
from tests.zeek_support import ZEEK_DATA, unmask


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def report(*args: str) -> dict:
    code, out, err = run("analyze", *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("zeek")
    return {n: unmask(ZEEK_DATA / n, base / n) for n in ("modbus", "s7comm_snap7", "zeek_dhcp")}


def breaches(data: dict) -> set[tuple[str, str]]:
    return {(b["model"], b["device"]) for b in data["breaches"]}


def test_same_breaches_as_the_captures(logs: dict[str, Path], tmp_path: Path) -> None:
    for name in ("modbus", "s7comm_snap7"):
        pkt = report(str(next((ZEEK_DATA / name).glob("*.pcap"))), "--store", str(tmp_path / f"{name}-p.sqlite"))
        zk = report("--zeek", str(logs[name]), "--store", str(tmp_path / f"{name}-z.sqlite"))
        assert breaches(pkt) and breaches(pkt) <= breaches(zk)
        # Without packets there is no MAC: a global address seen behind a LAN MAC is internal to
        # the packet path, external (the internet) to the Zeek path, and Modbus/S7 towards it is
        # "ICS port to the internet".
        extra = breaches(zk) - breaches(pkt)
        assert extra == {("Unusual ICS Connectivity", {"modbus": "192.168.1.6",
                                                       "s7comm_snap7": "134.217.61.131"}[name])}
        kinds = lambda d: {(o["source"], o["class"], o["protocol"], o["code"]) for o in d["ics_operations"]}  # noqa: E731
        assert kinds(zk) == kinds(pkt) and len(kinds(zk)) > 10


def test_evidence_is_the_log_line_with_its_uid(logs: dict[str, Path], tmp_path: Path) -> None:
    data = report("--zeek", str(logs["s7comm_snap7"]), "--store", str(tmp_path / "s.sqlite"))
    paths = {c["capture_id"]: c["path"] for c in data["captures"]}
    b = next(b for b in data["breaches"] if b["model"] == "Uncommon ICS Reprogram")
    ref = b["evidence"]["packets"][0]
    rec = record_at(paths[ref["capture_id"]], ref["frame"])
    assert Path(paths[ref["capture_id"]]).name == "s7comm.log"
    assert rec["uid"] == "CHhAvVGS1DHFjwGM9" and rec["function_name"] == "Start Upload"


def test_several_directories_and_no_double_counting(logs: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "both.sqlite"
    first = report("--zeek", str(logs["modbus"]), "--zeek", str(logs["zeek_dhcp"]), "--store", str(store))
    db = sqlite3.connect(store)
    rows = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    assert rows == 2 + 4
    code, _, err = run("analyze", "--zeek", str(logs["modbus"]), "--store", str(store), "--json")
    assert code == 0 and "already in the store" in err
    assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == rows
    # both directories' devices; the Modbus sample's loopback client is no device (issue 10)
    addresses = {d["address"] for d in first["devices"]}
    assert "128.2.6.152" in addresses and "127.0.0.1" not in addresses
    assert len(addresses) > 2   # the DHCP log's hosts too


def test_masked_times_are_refused_store_untouched(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    code, out, err = run("analyze", "--zeek", str(ZEEK_DATA / "modbus"), "--store", str(store))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "conn.log: line 10: time 'XXXXXXXXXX.XXXXXX'" in err
    db = sqlite3.connect(store)
    assert db.execute("SELECT COUNT(*) FROM captures").fetchone()[0] == 0


def test_learn_from_zeek_logs_then_detect(logs: dict[str, Path], tmp_path: Path) -> None:
    cold = report("--zeek", str(logs["s7comm_snap7"]), "--store", str(tmp_path / "cold.sqlite"))
    warm = report("--zeek", str(logs["s7comm_snap7"]), "--learn", str(logs["modbus"]),
                  "--store", str(tmp_path / "warm.sqlite"))
    assert cold["detection"]["baseline_hours"] == 0
    assert warm["detection"]["baseline_hours"] > 0  # the Modbus logs span two days of packet time
    assert {c["path"].split("/")[-2] for c in warm["captures"]} == {"modbus", "s7comm_snap7"}


@pytest.mark.parametrize("args", [
    ["--zeek", "/nonexistent/zeek"],
    ["x.pcap", "--zeek", "/tmp"],
    [],
])
def test_bad_arguments(args: list[str]) -> None:
    code, _, err = run("analyze", *args)
    assert code == 2 and err.startswith("plantwatch: ")


def test_a_corrupt_log_stops_the_run(logs: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in logs["modbus"].glob("*.log"):
        (bad / p.name).write_text(p.read_text())
    with (bad / "modbus_detailed.log").open("a") as fh:
        fh.write("1595660608.1\tCxyz\t1.2.3.4\n")
    store = tmp_path / "s.sqlite"
    code, _, err = run("analyze", "--zeek", str(bad), "--store", str(store))
    assert code == 2 and "modbus_detailed.log: line" in err and "fields, the header has 21" in err
