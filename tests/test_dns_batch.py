"""DNS messages read many at a time (core/decode/dns_batch.py) give exactly what dns.parse gives
one message at a time: on well-formed queries and responses of every shape the generators make,
and on the same messages truncated, with bytes overwritten, with label names in the answers,
compressed questions, several questions and non-ASCII labels (which dns_batch leaves to parse)."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from plantwatch.core.decode import dns, dns_batch
from plantwatch.core.decode.view import PacketView
from plantwatch.core.synth import frames as f


def _name(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_"
    return ".".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
                    for _ in range(rng.randint(1, 6)))


def _well_formed(rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    name = _name(rng)
    if kind == 0:
        return f.dns_query(rng.randrange(65536), name, rng.choice((1, 28, 12, 33)))
    if kind == 1:
        return f.dns_response(rng.randrange(65536), name, [], rcode=3)
    if kind == 2:   # AAAA and A answers
        q = f.dns_name(name) + struct.pack("!HH", 28, 1)
        v6 = struct.pack("!HHHIH", 0xC00C, 28, 1, 60, 16) + bytes(range(rng.randrange(200), 216)[:16]).ljust(16, b"\0")
        v4 = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([192, 0, 2, rng.randrange(256)])
        return struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 0, 0) + q + v6 + v4
    if kind == 3:   # an answer whose owner name is labels, then a CNAME, then an A
        q = f.dns_name(name) + struct.pack("!HH", 1, 1)
        owner = f.dns_name(name)
        cname = struct.pack("!HHHIH", 0xC00C, 5, 1, 60, 2) + b"\xc0\x0c"
        a = owner + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 0, rng.randrange(256), 1])
        return struct.pack("!HHHHHH", 9, 0x8180, 1, 3, 0, 0) + q + cname + a
    if kind == 4:   # the root
        return struct.pack("!HHHHHH", 3, 0x0100, 1, 0, 0, 0) + b"\x00" + struct.pack("!HH", 2, 1)
    if kind == 5:   # more answers than are walked
        return f.dns_response(rng.randrange(65536), name,
                              [f"10.{i // 256}.{i % 256}.1" for i in range(dns.MAX_ANSWERS + rng.randrange(1, 9))])
    addrs = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
             for _ in range(rng.randrange(0, 5))]
    return f.dns_response(rng.randrange(65536), name, addrs)


def _odd(rng: random.Random) -> bytes:
    """What dns_batch leaves to parse: compressed, several or no questions, escaped labels."""
    kind = rng.randrange(4)
    if kind == 0:
        return struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    if kind == 1:
        q = f.dns_name(_name(rng)) + struct.pack("!HH", 1, 1)
        return struct.pack("!HHHHHH", 2, 0x0100, 2, 0, 0, 0) + q + q
    if kind == 2:
        return struct.pack("!HHHHHH", 2, 0x8180, 0, 1, 0, 0) + struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + b"\1\2\3\4"
    label = bytes([3, 0x61, 0x0A, 0xFF, 2, 0x62, 0x7F, 0])
    return struct.pack("!HHHHHH", 4, 0x8180, 1, 0, 0, 0) + label + struct.pack("!HH", 1, 1)


def _mutated(rng: random.Random, msg: bytes) -> bytes:
    b = bytearray(msg)
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.5 and len(b) > 12:
            del b[rng.randrange(12, len(b)):]
        elif b:
            b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b) if len(b) >= 12 else bytes(b) + b"\0" * (12 - len(b))


def _expected(msg: bytes) -> dict:
    ident, response, qname, qtype, rcode, addrs, _ = dns.parse(msg)
    return {"dns_id": ident, "dns_response": response, "dns_qname": qname, "dns_qtype": qtype,
            "dns_rcode": rcode, "dns_answers": ",".join(addrs) if addrs else None}


@pytest.mark.parametrize("seed", range(4))
def test_batch_reading_matches_parse(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if seed % 2:   # names handled a few at a time
        monkeypatch.setattr(dns_batch, "NAME_BYTES", 100)
    rng = random.Random(seed)
    msgs = []
    for _ in range(1500):
        m = _well_formed(rng) if rng.random() < 0.7 else _odd(rng)
        msgs.append(_mutated(rng, m) if rng.random() < 0.4 else m)
    view = PacketView.from_payloads(msgs, proto=17, sport=53, dport=40000)
    state: dict = {}
    got = dns.decode(view, dns.select(view, state), state).columns
    assert got["row"].to_list() == list(range(len(msgs)))
    for row in got.iter_rows(named=True):
        want = _expected(msgs[row["row"]])
        assert {k: row[k] for k in want} == want, msgs[row["row"]].hex()
    unread = sum(dns.parse(m)[6] for m in msgs)
    assert dns.notes(state) == ([] if not unread else [
        f"DNS: {unread:,} answer records beyond the first {dns.MAX_ANSWERS} of a response were left "
        "out (not decoded, not used to name devices)"])


def test_most_generated_messages_are_read_in_the_batch() -> None:
    rng = random.Random(9)
    msgs = [_well_formed(rng) for _ in range(400)]
    data = np.frombuffer(b"".join(msgs), dtype=np.uint8)
    lens = np.array([len(m) for m in msgs], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    read = dns_batch.read(data, start, lens, dns.MAX_BATCH_ADDRS)
    assert read.done.size == len(msgs)
    odd = [_odd(random.Random(k)) for k in range(40)]
    data = np.frombuffer(b"".join(odd), dtype=np.uint8)
    lens = np.array([len(m) for m in odd], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    assert dns_batch.read(data, start, lens, dns.MAX_BATCH_ADDRS).done.size == 0


def test_the_batch_budget_cuts_addresses_in_row_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # messages read in the batch and one by one (compressed questions) interleaved, against a
    # budget far below what they hold: the first 150 addresses in row order are kept, whoever read them
    monkeypatch.setattr(dns, "MAX_BATCH_ADDRS", 150)
    rng = random.Random(3)
    msgs = []
    for i in range(120):
        addrs = [f"10.0.{i}.{k}" for k in range(rng.randrange(0, 6))]
        m = f.dns_response(i, _name(rng), addrs)
        if i % 3 == 0:   # the same answers behind a question dns_batch leaves to parse
            m = _compressed(i, addrs)
        msgs.append(m)
    view = PacketView.from_payloads(msgs, proto=17, sport=53, dport=40000)
    state: dict = {}
    got = dns.decode(view, dns.select(view, state), state).columns
    budget, want, total = 150, [], 0
    for m in msgs:
        addrs = list(dns.parse(m)[5] or ())
        total += len(addrs)
        kept, budget = addrs[:budget], budget - len(addrs[:budget])
        want.append(",".join(kept) or None)
    assert got["dns_answers"].to_list() == want
    assert dns.notes(state) == [f"DNS: {total - 150:,} answer addresses beyond 150 per batch were left out "
                                "(not decoded, not used to name devices)"]


def _compressed(ident: int, addrs: list[str]) -> bytes:
    """A response whose question name is a pointer (to itself: parse calls it malformed, and
    still walks the answers)."""
    q = b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    ans = b"".join(struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes(int(x) for x in a.split("."))
                   for a in addrs)
    return struct.pack("!HHHHHH", ident, 0x8180, 1, len(addrs), 0, 0) + q + ans
