"""Hostile DNS answers (issue 17.3): memory per batch is bounded whatever the responses hold.

The decoder walks at most dns.MAX_ANSWERS answer records per response and keeps at most
dns.MAX_BATCH_ADDRS addresses per batch; what it leaves out is counted and reaches the run's
warnings. Batches are also cut by captured bytes, so large packets make smaller batches. The peak
RSS on 200,000 such responses is measured by `make bench` (bench/hostile_dns.py), not here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.hostile_dns import hostile_name, records
from plantwatch.core.capture.files import read_batches
from plantwatch.core.decode import dns
from plantwatch.core.decode.view import PacketView
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import write_pcapng


def test_hostile_name_is_a_valid_name_of_the_length_asked() -> None:
    import random

    rng = random.Random(1)
    for n in (1, 20, 63, 64, 65, 127, 253):
        name = hostile_name(rng, n)
        assert len(name) == n and all(0 < len(lab) <= 63 for lab in name.split("."))


def _responses(n: int, answers: int, name_len: int = 253) -> list[bytes]:
    return [f.dns_response(i, hostile_name(__import__("random").Random(i), name_len),
                           [f"10.{i >> 8 & 255}.{i & 255}.{k}" for k in range(answers)])
            for i in range(n)]


def test_caps_per_response_and_per_batch_are_counted() -> None:
    per_batch = dns.MAX_BATCH_ADDRS // dns.MAX_ANSWERS
    payloads = _responses(per_batch + 88, dns.MAX_ANSWERS) + _responses(1, dns.MAX_ANSWERS + 6)
    view = PacketView.from_payloads(payloads, proto=17, sport=53, dport=40000)
    state: dict = {}
    rows = dns.select(view, state)
    res = dns.decode(view, rows, state).columns
    assert res.height == len(payloads)  # every response is still decoded (id, name, rcode)
    kept = res["dns_answers"].drop_nulls().str.split(",").list.len().sum()
    assert kept == dns.MAX_BATCH_ADDRS
    # the first responses keep all their answers, in order; the budget runs out after them
    assert res["dns_answers"][0] == ",".join(f"10.0.0.{k}" for k in range(dns.MAX_ANSWERS))
    assert res["dns_answers"][per_batch - 1] is not None and res["dns_answers"][per_batch] is None
    over = (88 * dns.MAX_ANSWERS) + dns.MAX_ANSWERS  # the last one: 64 walked, none kept
    assert dns.notes(state) == [
        f"DNS: {over:,} answer addresses beyond {dns.MAX_BATCH_ADDRS:,} per batch and 6 answer "
        f"records beyond the first {dns.MAX_ANSWERS} of a response were left out (not decoded, "
        "not used to name devices)"]
    assert dns.notes(state) == []  # counted once
    # a new batch has a new budget
    res2 = dns.decode(view, rows[:2], state).columns
    assert res2["dns_answers"].null_count() == 0 and dns.notes(state) == []


def test_large_messages_are_not_remembered() -> None:
    # over TCP (a 2-byte length first): read by dns.parse one at a time, through its cache (the
    # usual UDP message is read many at a time by dns_batch and never cached)
    def tcp(msgs: list[bytes]) -> PacketView:
        return PacketView.from_payloads([len(m).to_bytes(2, "big") + m for m in msgs], proto=6,
                                        sport=53, dport=40000)

    view = tcp(_responses(50, dns.MAX_ANSWERS))
    state: dict = {}
    assert dns.decode(view, dns.select(view, state), state).columns.height == 50
    assert state["parsed"] == {}
    small = f.dns_response(1, "historian.plant.local", ["10.1.2.3"])
    view = tcp([small, small])
    dns.decode(view, dns.select(view, state), state)
    assert len(state["parsed"]) == 1


def test_the_run_reports_what_the_caps_left_out(tmp_path: Path) -> None:
    cap = tmp_path / "hostile-dns.pcapng"
    write_pcapng(cap, records(600, 64, 253))
    with Store(tmp_path / "s.sqlite") as store:
        report = Ingest(store).run([cap])
    notes = [w for w in report.warnings if w.startswith("DNS: ")]
    assert notes == [f"DNS: {600 * 64 - dns.MAX_BATCH_ADDRS:,} answer addresses beyond "
                     f"{dns.MAX_BATCH_ADDRS:,} per batch were left out (not decoded, not used to "
                     "name devices)"]


def test_batches_are_cut_by_bytes(tmp_path: Path) -> None:
    cap = tmp_path / "big.pcapng"
    frame = f.udp_frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", 1, 2,
                        b"x" * 8000)
    write_pcapng(cap, [(i * 1000, frame) for i in range(100)])
    sizes = [int(b.caplen.sum()) for b in read_batches([cap], chunk_packets=1000, chunk_bytes=50_000)]
    assert sum(sizes) == 100 * len(frame)
    assert max(sizes) <= 50_000 and len(sizes) == -(-100 // (50_000 // len(frame)))
    # one record larger than the limit still makes a batch of its own
    one = [len(b) for b in read_batches([cap], chunk_bytes=100)]
    assert one == [1] * 100
    assert np.all(np.array(sizes) > 0)
