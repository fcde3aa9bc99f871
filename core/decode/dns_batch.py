"""DNS messages read many at a time (numpy), for the usual message: one question whose name is
uncompressed labels of printable ASCII. Its id, flags, name, type and answer walk are read for the
whole batch at once; every other message (a compressed or non-ASCII question name, several or no
questions, a truncated question, an answer name longer than ANSWER_NAME_STEPS labels) is left to
dns.parse, one message at a time. Both give the same columns: tests/test_dns_batch.py compares
them on generated, mutated and truncated messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def _header(data: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, ...]:
    """(id, flags, question count, answer count) of the messages at `start` (>= 8 bytes each):
    their first 8 bytes are copied out as one big-endian 64-bit word per message."""
    if start.size == 0:
        return (np.zeros(0, dtype=np.int64),) * 4
    words = np.lib.stride_tricks.sliding_window_view(data, 8)[start].view(">u8")[:, 0].astype(np.int64)
    return tuple((words >> s) & 0xFFFF for s in (48, 32, 16, 0))


def _question(data: np.ndarray, start: np.ndarray, end: np.ndarray,
              ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walk the question name of messages `ok` (labels only, as dns.read_labels): position of
    its terminating zero (-1 where the walk was left to dns.parse); the message and absolute
    position of the length octet of every second or later label (the dots of the name as text)."""
    zero = np.full(start.size, -1, dtype=np.int64)
    dot_msg: list[np.ndarray] = []
    dots: list[np.ndarray] = []
    # the names still walked, compacted together: message, position, message end, octets so far
    idx = np.flatnonzero(ok)
    cur, stop = start[idx] + 12, end[idx]
    total = np.zeros(idx.size, dtype=np.int64)
    first = True
    while idx.size:
        inside = cur < stop
        ln = data.take(cur, mode="clip").astype(np.int64)   # read past the end only when not inside
        last = inside & (ln == 0)
        zero[idx[last]] = cur[last]
        total += ln + 1
        # pointers and extended labels are dns.parse's case
        go = inside & ~last & ((ln & 0xC0) == 0) & (cur + 1 + ln <= stop) & (total <= MAX_NAME)
        idx, cur, stop, total, ln = idx[go], cur[go], stop[go], total[go], ln[go]
        if not first:   # a label after the first: its length octet is a dot
            dot_msg.append(idx)
            dots.append(cur)
        first = False
        cur = cur + 1 + ln
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
    # each name is gathered with the zero octet at `stop` that ends it: that octet's slot becomes
    # the '\n' the texts are split on, so the gathered bytes need no second copy
    lens = stop - first + 1   # >= 2: a root name is not among them
    offs = np.zeros(lens.size + 1, dtype=np.int64)
    np.cumsum(lens, out=offs[1:])
    at = np.int32 if data.size < 2**31 else np.int64   # one index per name byte: kept small
    text = data[np.repeat((first - offs[:-1]).astype(at), lens) + np.arange(offs[-1], dtype=at)]
    text[offs[dot_name] + dots - first[dot_name]] = 0x2E
    ends = offs[1:] - 1
    text[ends] = 0x2E   # printable for the check below
    if text.size and (text.min() < 0x20 or text.max() > 0x7E):
        odd = (text < 0x20) | (text > 0x7E)
        printable = ~np.logical_or.reduceat(odd, offs[:-1])
        text[ends] = 0x0A
        text = text[np.repeat(printable, lens)]
    else:
        printable = np.ones(lens.size, dtype=bool)
        text[ends] = 0x0A
    return printable, text.tobytes().decode("ascii").split("\n")[:-1]


def read(data: np.ndarray, start: np.ndarray, length: np.ndarray, keep_addrs: int) -> Read:
    """Messages at absolute `start` of `length` bytes (>= 12) in `data`. Answer addresses are all
    counted, but only those among the first `keep_addrs` of the batch can be kept (the caller's
    budget, which messages read one by one only share) are located: a batch of hostile responses
    would otherwise hold millions of positions."""
    end = start + length
    ident, flags, qd, an = _header(data, start)
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


def _octet_texts() -> np.ndarray:
    """Per octet value, its decimal text and a '.', right-aligned in 4 bytes after _PAD bytes."""
    table = np.full((256, 4), _PAD, dtype=np.uint8)
    for v in range(256):
        text = f"{v}.".encode()
        table[v, 4 - len(text):] = list(text)
    return table.view(np.uint32).ravel()


_PAD = 0xFF   # never in an address's text
_OCTETS = _octet_texts()


def _v4_texts(data: np.ndarray, at: np.ndarray, sep: np.ndarray | int) -> str:
    """The IPv4 addresses at `at` as dotted text, each followed by its `sep` byte."""
    m = _OCTETS.take(data[at[:, None] + np.arange(4)]).view(np.uint8).reshape(-1, 16)
    m[:, 15] = sep   # the last octet's '.'
    flat = m.ravel()
    return flat[flat != _PAD].tobytes().decode("ascii")


def joined(data: np.ndarray, at: np.ndarray, v4: np.ndarray, others: list[str],
           last: np.ndarray) -> list[str]:
    """Answer addresses in order, written as dns.parse writes them and joined by ',' up to each
    `last` one: one string per group. An address is the 4 bytes at `at` in data where `v4`, else
    the next of `others` (its text already; `at` is not read there)."""
    if at.size == 0:
        return []
    if v4.all():
        return _v4_texts(data, at, np.where(last, 0x0A, 0x2C)).split("\n")[:-1]
    texts = np.empty(at.size, dtype=object)
    texts[v4] = _v4_texts(data, at[v4], 0x0A).split("\n")[:-1]
    texts[~v4] = others
    ends = (np.flatnonzero(last) + 1).tolist()
    every = texts.tolist()
    return [",".join(every[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]


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
