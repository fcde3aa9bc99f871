"""A capture cut short and the whole capture, in either order, into one store: every packet is
counted once. A capture that only begins like a stored one is a capture of its own. Captures
from a pipe or a FIFO, and a capture named twice, are read once."""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch import demo_data
from plantwatch.core.capture.files import read_batches
from plantwatch.core.synth.pcapwriter import write_pcap
from plantwatch.tui.cli import main

REAL = Path(__file__).parent / "data" / "real"
MODBUS = REAL / "modbus_mixed_mb2.pcap"


def _analyze(store: Path, *captures: Path) -> str:
    res = CliRunner().invoke(main, ["analyze", "--store", str(store), *map(str, captures), "--json"])
    assert res.exit_code == 0, res.stderr
    return res.stderr


def _counts(store: Path) -> dict[str, object]:
    db = sqlite3.connect(store)
    try:
        q = lambda sql: db.execute(sql).fetchall()  # noqa: E731
        return {
            "devices": q("SELECT device, pkts_sent, pkts_recv, bytes_sent, bytes_recv, read_ops, action_ops, "
                         "sessions_client, sessions_server FROM devices ORDER BY device"),
            "ops": q("SELECT SUM(count) FROM session_ops"),
            "sessions": q("SELECT proto, client_lo, client_port, server_lo, server_port, state, "
                          "pkts_c2s, pkts_s2c FROM sessions ORDER BY 1, 2, 3, 4, 5, 6, 7"),
        }
    finally:
        db.close()


def _captures(store: Path) -> list[tuple]:
    db = sqlite3.connect(store)
    try:
        return db.execute("SELECT capture_id, packets, status, resumes, first_frame FROM captures "
                          "ORDER BY capture_id").fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The demo's incident capture decompressed, its first 40,000,000 bytes (cut mid-record),
    and what the whole capture alone puts in a store."""
    d = tmp_path_factory.mktemp("incident")
    full, part = d / "full.pcapng", d / "part.pcapng"
    with gzip.open(demo_data.files() / demo_data.INCIDENT) as src:
        data = src.read()
    full.write_bytes(data)
    part.write_bytes(data[:40_000_000])
    alone = d / "alone.sqlite"
    _analyze(alone, full)
    return full, part, _counts(alone)


def test_part_then_full_counts_each_packet_once(incident: tuple[Path, Path, dict], tmp_path: Path) -> None:
    full, part, want = incident
    store = tmp_path / "s.sqlite"
    _analyze(store, part)
    err = _analyze(store, full)
    assert f"plantwatch: {full}: continues capture 1 ({part}): its first 175,689 packets are already" in err
    assert _counts(store) == want
    (_, n1, st1, _, _), (_, n2, st2, resumes, first) = _captures(store)
    assert (st1, st2, resumes, first) == ("truncated", "complete", 1, n1 + 1)
    assert n1 + n2 == 221_302          # capinfos: the whole capture's packets


def test_full_then_part_adds_nothing(incident: tuple[Path, Path, dict], tmp_path: Path) -> None:
    full, part, want = incident
    store = tmp_path / "s.sqlite"
    _analyze(store, full)
    err = _analyze(store, part)
    assert f"plantwatch: {part}: its records are the first records of capture 1 ({full}), already" in err
    assert _counts(store) == want
    assert len(_captures(store)) == 1


def _records(src: Path) -> list[tuple[int, bytes]]:
    recs = []
    for b in read_batches([src]):
        for i in range(len(b)):
            o, n = int(b.offset[i]), int(b.caplen[i])
            recs.append((int(b.ts[i]), b.data[o:o + n].tobytes()))
    return recs


def test_pcap_and_gzip_cut_mid_record_resume(tmp_path: Path) -> None:
    data = MODBUS.read_bytes()
    for name, whole in (("pcap", data), ("gz", gzip.compress(data, mtime=0))):
        full, part = tmp_path / f"full.{name}", tmp_path / f"part.{name}"
        full.write_bytes(whole)
        part.write_bytes(whole[:len(whole) * 3 // 5])
        alone, store = tmp_path / f"alone-{name}.sqlite", tmp_path / f"s-{name}.sqlite"
        _analyze(alone, full)
        _analyze(store, part)
        _analyze(store, full)
        assert _counts(store) == _counts(alone), name
        caps = _captures(store)
        assert caps[1][3] == 1 and caps[0][1] + caps[1][1] == _captures(alone)[0][1], name


def test_a_capture_sharing_only_its_first_records_is_new(tmp_path: Path) -> None:
    """Same writer, same first 3000 records, then other records: a capture of its own, counted
    whole. One holding all 6000 records of the stored one, then more, continues it."""
    recs = _records(MODBUS)
    stored, diverging, longer = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    write_pcap(stored, recs[:6000], nanosecond=True)
    write_pcap(diverging, recs[:3000] + recs[7000:9000], nanosecond=True)
    write_pcap(longer, recs[:8000], nanosecond=True)
    store = tmp_path / "s.sqlite"
    _analyze(store, stored)
    err = _analyze(store, diverging)
    assert "continues" not in err and "first records" not in err
    assert _captures(store)[1][1:] == (5000, "complete", None, 1)
    _analyze(store, longer)
    assert _captures(store)[2][1:] == (2000, "complete", 1, 6001)
    rest = tmp_path / "d.pcap"          # what the longer one adds: its records after the 6000
    write_pcap(rest, recs[6000:8000], nanosecond=True)
    ref = tmp_path / "ref.sqlite"
    for cap in (stored, diverging, rest):
        _analyze(ref, cap)
    assert _counts(store) == _counts(ref)


def test_capture_from_a_pipe_via_dev_stdin(tmp_path: Path) -> None:
    store, ref = tmp_path / "s.sqlite", tmp_path / "ref.sqlite"
    res = subprocess.run(f"cat '{MODBUS}' | '{sys.executable}' -m plantwatch analyze --store '{store}' /dev/stdin",
                         shell=True, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    _analyze(ref, MODBUS)
    assert _counts(store) == _counts(ref)
    db = sqlite3.connect(store)
    assert db.execute("SELECT path, packets FROM captures").fetchall() == [("/dev/stdin", _captures(ref)[0][1])]
    db.close()
    err = _analyze(store, MODBUS)            # the same packets from the file: already there
    assert "already in the store" in err
    assert _counts(store) == _counts(ref)


def test_capture_from_a_fifo(tmp_path: Path) -> None:
    fifo, store, ref = tmp_path / "cap.fifo", tmp_path / "s.sqlite", tmp_path / "ref.sqlite"
    os.mkfifo(fifo)
    # a subprocess with a time limit: a reader that opened the FIFO twice would wait forever
    proc = subprocess.Popen([sys.executable, "-m", "plantwatch", "analyze", "--store", str(store), str(fifo)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    writer = threading.Thread(target=lambda: fifo.write_bytes(MODBUS.read_bytes()), daemon=True)
    writer.start()
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "empty file" not in err
    _analyze(ref, MODBUS)
    assert _counts(store) == _counts(ref)


def test_the_same_capture_named_twice_is_read_once(tmp_path: Path) -> None:
    copy = tmp_path / "copy.pcap"
    copy.write_bytes(MODBUS.read_bytes())
    store, ref = tmp_path / "s.sqlite", tmp_path / "ref.sqlite"
    res = CliRunner().invoke(main, ["analyze", "--store", str(store), str(MODBUS), str(copy)])
    assert res.exit_code == 0, res.stderr
    assert f"plantwatch: {copy}: the same capture as {MODBUS}, named earlier in this run; read once" in res.stderr
    assert "constraint" not in res.stderr
    _analyze(ref, MODBUS)
    assert _counts(store) == _counts(ref)


def test_part_and_full_named_in_one_run_count_once(tmp_path: Path) -> None:
    data = MODBUS.read_bytes()
    full, part = tmp_path / "full.pcap", tmp_path / "part.pcap"
    full.write_bytes(data)
    part.write_bytes(data[:len(data) // 2])
    store, alone = tmp_path / "s.sqlite", tmp_path / "alone.sqlite"
    err = _analyze(store, part, full)
    assert f"plantwatch: {part}: its records are the first records of {full}, named in this run too" in err
    _analyze(alone, full)
    assert _counts(store) == _counts(alone)
