"""`plantwatch analyze` end to end: real captures in, a report and a store out; bad input refused."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.synth import mixed, office
from plantwatch.core.synth.pcapwriter import write_pcap
from plantwatch.tui.cli import main

REAL = Path(__file__).parent / "data" / "real"
SNAP7 = REAL / "s7comm_snap7.pcap"
MODBUS = REAL / "modbus_mixed_mb2.pcap"


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def analyze_json(*args: str) -> dict:
    code, out, err = run("analyze", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def store_rows(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("captures", "sessions", "session_ops", "devices")}
    finally:
        db.close()


def test_snap7_operations_are_classified() -> None:
    rep = analyze_json(str(SNAP7))
    ops = {(o["class"], o["name"]) for o in rep["ics_operations"]}
    assert ("ACTION", "PLC Stop") in ops
    assert ("ACTION", "Write Var") in ops
    assert any(c == "ACTION" and n.startswith("PLC Start") for c, n in ops), ops
    assert ("REPROGRAM", "Start Upload") in ops
    assert {o["source"] for o in rep["ics_operations"]} == {"134.217.61.131"}
    plc = next(d for d in rep["devices"] if d["address"] == "134.217.61.211")
    assert plc["role"] == "plc"
    assert plc["vendor"].startswith("Siemens")


def test_modbus_controllers_and_polling_host() -> None:
    rep = analyze_json(str(MODBUS))
    roles = {d["address"]: d["role"] for d in rep["devices"]}
    modbus_servers = {d["address"] for d in rep["devices"] if "modbus" in d["ics_protocols_served"]}
    assert len(modbus_servers) >= 10
    assert all(roles[a] == "plc" for a in modbus_servers), {a: roles[a] for a in modbus_servers}
    assert roles["141.81.0.10"] == "hmi"
    reads = [o for o in rep["ics_operations"] if o["source"] == "141.81.0.10" and o["class"] == "READ"]
    assert sum(o["count"] for o in reads) > 1000


def test_store_does_not_double_and_appends(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    analyze_json(str(SNAP7), "--store", str(store))
    first = store_rows(store)
    code, _, err = run("analyze", str(SNAP7), "--store", str(store), "--json")
    assert code == 0
    assert "already in the store" in err
    assert store_rows(store) == first
    rep = analyze_json(str(REAL / "dnp3_test_data_part1.pcap"), "--store", str(store))
    after = store_rows(store)
    assert after["captures"] == 2
    assert after["sessions"] > first["sessions"]
    addrs = {d["address"] for d in rep["devices"]}
    assert "134.217.61.211" in addrs  # the first capture's devices are still in the inventory


def test_temporary_store_reports_what_a_given_store_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --store the run's own store is removed after the report and builds no session
    indexes (core/store/bulk.py): the report is the same, byte for byte."""
    from plantwatch.core.store import bulk

    built: list[bool] = []
    real = bulk.DeferredIndexes.restore

    def spy(self: bulk.DeferredIndexes) -> None:
        built.append(self.rebuild and bool(self.dropped))
        real(self)

    monkeypatch.setattr(bulk, "MIN_ROWS", 10)
    monkeypatch.setattr(bulk.DeferredIndexes, "restore", spy)
    pcap = tmp_path / "office.pcapng"
    mixed.generate(pcap, 6_000, 7, office.plant)
    code, kept, err = run("analyze", str(pcap), "--store", str(tmp_path / "s.sqlite"), "--json")
    assert code == 0, err
    code, temp, err = run("analyze", str(pcap), "--json")
    assert code == 0, err
    assert temp == kept
    assert json.loads(temp)["sessions_by_protocol"] and json.loads(temp)["failed_connections"]
    assert built == [True, False]   # the given store rebuilt its indexes, the temporary one did not


def test_jsonl_records_are_typed() -> None:
    code, out, _ = run("analyze", str(SNAP7), "--jsonl")
    assert code == 0
    recs = [json.loads(line) for line in out.splitlines()]
    assert recs[0]["type"] == "report"
    kinds = {r["type"] for r in recs}
    assert {"capture", "device", "protocol", "operation"} <= kinds


def test_json_matches_its_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parent.parent / "core" / "data" / "analyze.schema.json").read_text())
    jsonschema.validate(analyze_json(str(SNAP7)), schema)
    jsonschema.validate(analyze_json(str(MODBUS)), schema)


def test_human_summary_lists_inventory() -> None:
    code, out, _ = run("analyze", str(SNAP7))
    assert code == 0
    assert "Inventory" in out and "134.217.61.211" in out and "PLC Stop" in out


# --- bad input: one line naming the file and the problem, non-zero exit, store untouched ---

def _eth_frame() -> bytes:
    return bytes(12) + b"\x08\x00" + bytes.fromhex("450000140000000040060000c0a80001c0a80002")


@pytest.fixture
def populated_store(tmp_path: Path) -> Path:
    store = tmp_path / "keep.sqlite"
    analyze_json(str(SNAP7), "--store", str(store))
    return store


def _assert_refused(args: list[str], store: Path, expect: str) -> None:
    before = store_rows(store)
    code, _, err = run("analyze", *args, "--store", str(store))
    assert code != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert expect in lines[0], lines[0]
    assert store_rows(store) == before
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_missing_file(tmp_path: Path, populated_store: Path) -> None:
    missing = tmp_path / "nope.pcap"
    _assert_refused([str(missing)], populated_store, f"{missing}: no such file")


def test_empty_file(tmp_path: Path, populated_store: Path) -> None:
    p = tmp_path / "empty.pcap"
    p.write_bytes(b"")
    _assert_refused([str(p)], populated_store, f"{p}: empty file")


def test_text_file(tmp_path: Path, populated_store: Path) -> None:
    p = tmp_path / "notes.pcap"
    p.write_text("this is not a capture\n" * 20)
    _assert_refused([str(p)], populated_store, f"{p}: not a pcap or pcapng file")


def test_unknown_link_type(tmp_path: Path, populated_store: Path) -> None:
    p = tmp_path / "lt.pcap"
    write_pcap(p, [(1_000_000_000, _eth_frame())], linktype=147)
    _assert_refused([str(p)], populated_store, "unknown link type 147")


def test_directory_without_captures(tmp_path: Path, populated_store: Path) -> None:
    d = tmp_path / "empty_dir"
    d.mkdir()
    (d / "readme.txt").write_text("nothing here")
    _assert_refused([str(d)], populated_store, str(d))


def test_corrupt_record_mid_file_keeps_store(tmp_path: Path, populated_store: Path) -> None:
    p = tmp_path / "corrupt.pcap"
    write_pcap(p, [(1_000_000_000 + i, _eth_frame()) for i in range(50)])
    raw = bytearray(p.read_bytes())
    # the 30th record header's caplen: 24-byte file header, each record 16 + 34 bytes
    at = 24 + 29 * (16 + 34) + 8
    raw[at:at + 4] = struct.pack("<I", 0x7FFFFFF0)
    p.write_bytes(bytes(raw))
    _assert_refused([str(SNAP7.parent / "dnp3_test_data_part1.pcap"), str(p)], populated_store, str(p))


def test_truncated_last_record_keeps_packets(tmp_path: Path) -> None:
    p = tmp_path / "cut.pcap"
    shutil.copy(SNAP7, p)
    data = p.read_bytes()
    p.write_bytes(data[:-10])
    code, out, err = run("analyze", str(p), "--json")
    assert code == 0
    assert "truncated" in err and str(p) in err
    rep = json.loads(out)
    assert rep["captures"][0]["packets"] == 63
    assert rep["captures"][0]["status"] == "truncated"


def test_unwritable_store(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "s.sqlite"
    code, _, err = run("analyze", str(SNAP7), "--store", str(target))
    assert code != 0
    assert str(target) in err and len(err.strip().splitlines()) == 1


def test_store_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_text("hello, I am not SQLite" * 100)
    code, _, err = run("analyze", str(SNAP7), "--store", str(bogus))
    assert code != 0
    assert f"{bogus}: not a plantwatch store" in err
    assert bogus.read_text().startswith("hello")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None, reason="needs root to mount a tmpfs")
def test_full_disk_keeps_store(tmp_path: Path) -> None:
    # a disk that holds the store after a first run with 32 kB to spare: the second run's pages
    # cannot all be written
    first = tmp_path / "first.sqlite"
    analyze_json(str(SNAP7), "--store", str(first))
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    size_k = first.stat().st_size // 1024 + 32
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        store = mnt / "s.sqlite"
        shutil.copy(first, store)
        before = store_rows(store)
        code, _, err = run("analyze", str(MODBUS), "--store", str(store))
        assert code == 2
        assert err.strip() == f"plantwatch: {store}: cannot write (database or disk is full); nothing from this run was kept"
        assert store_rows(store) == before
        db = sqlite3.connect(store)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
