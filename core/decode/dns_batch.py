"""DNS messages read many at a time (numpy), for the usual message: one question whose name is
uncompressed labels of printable ASCII. Its id, flags, name, type and answer walk are read for the
whole batch at once; every other message (a compressed or non-ASCII question name, several or no
questions, a truncated question, an answer name longer than ANSWER_NAME_STEPS labels) is left to
dns.parse, one message at a time. Both give the same columns: tests/test_dns_batch.py compares
them on generated, mutated and truncated messages.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import polars as pl

MAX_NAME = 255           # wire octets of a name
MAX_ANSWERS = 64         # answer records walked per message
ANSWER_NAME_STEPS = 64   # labels walked in one answer's owner name before leaving it to dns.parse


@dataclass(frozen=True, slots=True)
class Read:
    """What was read of messages `done` (indexes into the input arrays); the others are not."""
    done: np.ndarray       # int64 message indexes
    ident: np.ndarray      # per done message
    response: np.ndarray   # bool
    qname: list[str]
    qtype: np.ndarray
    rcode: np.ndarray      # -1: none (a query)
    unread: np.ndarray     # answer records beyond MAX_ANSWERS
    addrs: int             # A/AAAA answers of the done messages, all of them
    addr_msg: np.ndarray   # per A/AAAA answer that may be kept (below), in message then answer
                           # order: its message index,
    addr_at: np.ndarray    # the absolute position of its address in data
    addr_len: np.ndarray   # and the address's length (4 or 16)


def _u8(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return data[pos].astype(np.int64)


def _be16(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (data[pos].astype(np.int64) << 8) | data[pos + 1]


def _question(data: np.ndarray, start: np.ndarray, end: np.ndarray,
              ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walk the question name of messages `ok` (labels only, as dns.read_labels): position of
    its terminating zero (-1 where the walk was left to dns.parse); the message and absolute
    position of the length octet of every second or later label (the dots of the name as text)."""
    zero = np.full(start.size, -1, dtype=np.int64)
    cur = start + 12
    total = np.zeros(start.size, dtype=np.int64)
    dot_msg: list[np.ndarray] = []
    dots: list[np.ndarray] = []
    idx = np.flatnonzero(ok)
    while idx.size:
        c = cur[idx]
        inside = c < end[idx]
        idx, c = idx[inside], c[inside]
        ln = _u8(data, c)
        last = ln == 0
        zero[idx[last]] = c[last]
        label = ~last & ((ln & 0xC0) == 0)   # pointers and extended labels: dns.parse's case
        idx, c, ln = idx[label], c[label], ln[label]
        total[idx] += ln + 1
        fits = (c + 1 + ln <= end[idx]) & (total[idx] <= MAX_NAME)
        idx, c, ln = idx[fits], c[fits], ln[fits]
        inner = c != start[idx] + 12
        dot_msg.append(idx[inner])
        dots.append(c[inner])
        cur[idx] = c + 1 + ln
    empty = np.zeros(0, dtype=np.int64)
    return zero, (np.concatenate(dot_msg) if dots else empty), (np.concatenate(dots) if dots else empty)


NAME_BYTES = 1 << 20   # name bytes handled at a time (a few of its index arrays are 4 bytes a byte)


def _names(data: np.ndarray, first: np.ndarray, stop: np.ndarray, dot_name: np.ndarray,
           dots: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The names between `first` and `stop` (absolute) with `dots` (of names `dot_name`) turned to
    '.': (printable mask, the printable ones as text, in order); NAME_BYTES at a time."""
    ends = np.cumsum(stop - first)
    printable: list[np.ndarray] = []
    texts: list[str] = []
    i = 0
    while i < first.size:
        done = int(ends[i - 1]) if i else 0
        j = max(i + 1, int(np.searchsorted(ends, done + NAME_BYTES, side="right")))
        mine = (dot_name >= i) & (dot_name < j)
        ok, some = _some_names(data, first[i:j], stop[i:j], dot_name[mine] - i, dots[mine])
        printable.append(ok)
        texts.extend(some)
        i = j
    return (np.concatenate(printable) if printable else np.zeros(0, dtype=bool)), texts


def _some_names(data: np.ndarray, first: np.ndarray, stop: np.ndarray, dot_name: np.ndarray,
                dots: np.ndarray) -> tuple[np.ndarray, list[str]]:
    lens = stop - first   # >= 1: a root name is not among them
    offs = np.zeros(lens.size + 1, dtype=np.int64)
    np.cumsum(lens, out=offs[1:])
    at = np.int32 if data.size < 2**31 else np.int64   # one index per name byte: kept small
    src = np.repeat((first - offs[:-1]).astype(at), lens) + np.arange(offs[-1], dtype=at)
    text = data[src]
    del src
    dot = np.zeros(text.size, dtype=bool)
    dot[offs[dot_name] + dots - first[dot_name]] = True
    odd = ~dot & ((text < 0x20) | (text > 0x7E))
    printable = ~np.logical_or.reduceat(odd, offs[:-1]) if lens.size else np.zeros(0, dtype=bool)
    keep = np.repeat(printable, lens)
    flat = np.where(dot, np.uint8(0x2E), text)[keep]
    # one '\n' after each kept name (printable names hold none), then one split
    k = int(printable.sum())
    out = np.full(flat.size + k, 0x0A, dtype=np.uint8)
    out[np.arange(flat.size, dtype=at) + np.repeat(np.arange(k, dtype=at), lens[printable])] = flat
    return printable, out.tobytes().decode("ascii").split("\n")[:k]


def read(data: np.ndarray, start: np.ndarray, length: np.ndarray, keep_addrs: int) -> Read:
    """Messages at absolute `start` of `length` bytes (>= 12) in `data`. Answer addresses are all
    counted, but only those among the first `keep_addrs` of the batch can be kept (the caller's
    budget, which messages read one by one only share) are located: a batch of hostile responses
    would otherwise hold millions of positions."""
    end = start + length
    ident = _be16(data, start)
    flags = _be16(data, start + 2)
    qd = _be16(data, start + 4)
    an = _be16(data, start + 6)
    zero, dot_msg, dots = _question(data, start, end, qd == 1)
    ok = (zero >= 0) & (zero + 5 <= end)   # a truncated question is dns.parse's case
    root = ok & (zero == start + 12)
    named = np.flatnonzero(ok & ~root)
    name_of = np.full(start.size, -1, dtype=np.int64)
    name_of[named] = np.arange(named.size)
    on_named = name_of[dot_msg] >= 0
    printable, texts = _names(data, start[named] + 13, zero[named], name_of[dot_msg[on_named]],
                              dots[on_named])
    ok[named[~printable]] = False
    qname = np.full(start.size, None, dtype=object)
    qname[root] = "<Root>"
    if texts:
        qname[named[printable]] = np.array(texts, dtype=object)
    addr_msg, addr_k, addr_at, addr_len, per_msg, bad = _answers(
        data, zero + 5, end, np.where(ok, np.minimum(an, MAX_ANSWERS), 0), keep_addrs)
    ok[bad] = False
    keep = np.flatnonzero(ok[addr_msg])
    keep = keep[np.lexsort((addr_k[keep], addr_msg[keep]))]
    done = np.flatnonzero(ok)
    response = (flags & 0x8000) != 0
    return Read(done=done, ident=ident[done], response=response[done], qname=qname[done].tolist(),
                qtype=_be16(data, zero[done] + 1), rcode=np.where(response, flags & 0x0F, -1)[done],
                unread=np.maximum(an - MAX_ANSWERS, 0)[done], addrs=int(per_msg[done].sum()),
                addr_msg=addr_msg[keep],
                addr_at=addr_at[keep], addr_len=addr_len[keep])


def _answers(data: np.ndarray, pos: np.ndarray, end: np.ndarray, count: np.ndarray, keep_addrs: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walk `count` answer records from `pos` as dns.parse does (a bad owner name or a record past
    the end stops the walk, keeping what came before). (message, answer index, address position,
    address length) of the A and AAAA answers that can be among the first `keep_addrs`; A and
    AAAA answers per message; messages whose owner names were too long to walk here (dns.parse's
    case, which finds at least as many answers before that name)."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    per_msg = np.zeros(pos.size, dtype=np.int64)
    bad: list[np.ndarray] = []
    alive = count > 0
    pos = pos.copy()
    for k in range(int(count.max()) if count.size else 0):
        idx = np.flatnonzero(alive & (count > k))
        if idx.size == 0:
            break
        after, stopped, unwalked = _skip_names(data, pos[idx], end[idx])
        bad.append(idx[unwalked])
        alive[idx[stopped | unwalked]] = False
        go = ~(stopped | unwalked)
        idx, p = idx[go], after[go]
        fits = p + 10 <= end[idx]
        alive[idx[~fits]] = False
        idx, p = idx[fits], p[fits]
        rtype = _be16(data, p)
        rdlen = _be16(data, p + 8)
        nxt = p + 10 + rdlen
        inside = nxt <= end[idx]
        alive[idx[~inside]] = False
        idx, p, rtype, rdlen, nxt = idx[inside], p[inside], rtype[inside], rdlen[inside], nxt[inside]
        pos[idx] = nxt
        addr = ((rtype == 1) & (rdlen == 4)) | ((rtype == 28) & (rdlen == 16))
        # the batch holds at least cumsum(per_msg) addresses up to this one: past keep_addrs, it is
        # only counted
        np.add.at(per_msg, idx[addr], 1)
        addr &= np.cumsum(per_msg)[idx] <= keep_addrs
        if addr.any():
            # compact: a batch of hostile responses holds millions of these
            found.append((idx[addr].astype(np.int32), np.full(int(addr.sum()), k, dtype=np.int8),
                          p[addr] + 10, rdlen[addr].astype(np.int8)))
    empty = np.zeros(0, dtype=np.int64)
    cols = [np.concatenate(c) if c else empty for c in zip(*found, strict=True)] if found else [empty] * 4
    return (*cols, per_msg, np.concatenate(bad) if bad else empty)


def texts(data: np.ndarray, at: np.ndarray, length: np.ndarray) -> list[str]:
    """The addresses at `at` (4 bytes: IPv4, 16: IPv6) as dns.parse writes them."""
    v4 = np.flatnonzero(length == 4)
    dotted = pl.DataFrame({str(i): data[at[v4] + i] for i in range(4)}).select(
        pl.concat_str(pl.all(), separator=".")).to_series().to_list()
    if v4.size == at.size:
        return dotted
    out: list[str] = [""] * at.size
    for i, t in zip(v4.tolist(), dotted, strict=True):
        out[i] = t
    for i in np.flatnonzero(length == 16).tolist():
        out[i] = str(ipaddress.IPv6Address(data[at[i] : at[i] + 16].tobytes()))
    return out


def _skip_names(data: np.ndarray, pos: np.ndarray,
                end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dns._skip_name for many owner names: (position after each, stopped by a bad name, not
    walked within ANSWER_NAME_STEPS labels)."""
    cur = pos.copy()
    stopped = np.zeros(pos.size, dtype=bool)
    walking = np.ones(pos.size, dtype=bool)
    for _ in range(ANSWER_NAME_STEPS):
        idx = np.flatnonzero(walking)
        if idx.size == 0:
            break
        c = cur[idx]
        outside = c >= end[idx]
        stopped[idx[outside]] = True
        walking[idx[outside]] = False
        idx, c = idx[~outside], c[~outside]
        ln = _u8(data, c)
        fin0 = ln == 0
        ptr = (ln & 0xC0) == 0xC0
        ext = ~ptr & ((ln & 0xC0) != 0)
        cur[idx[fin0]] = c[fin0] + 1
        cur[idx[ptr]] = c[ptr] + 2
        stopped[idx[ext]] = True
        walking[idx[fin0 | ptr | ext]] = False
        lab = ~(fin0 | ptr | ext)
        cur[idx[lab]] = c[lab] + 1 + ln[lab]
    return cur, stopped, walking
