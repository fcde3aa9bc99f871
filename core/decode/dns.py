"""DNS on UDP 53, 5353 (mDNS) and 5355 (LLMNR, same format), and on TCP 53 (2-byte length prefix).

Per packet: id, QR flag, rcode (responses only, like tshark's dns.flags.rcode), the first question's
name and type, and the A/AAAA addresses of the answer section in order.

Names are rendered like tshark's dns.qry.name: labels joined by '.', "<Root>" for the root name,
compression pointers followed with a bound on jumps (a loop ends the name as malformed -> null).
DNS over TCP is decoded from the segment that starts the message, when it has one question (tshark
reports a message split over segments on its last segment instead; the header and question are in
the first one); only the first message of a segment is read.

Memory is bounded whatever the packets hold (issue 17.3): at most MAX_ANSWERS answer records are
walked per message and at most MAX_BATCH_ADDRS addresses are kept per batch (the inventory names
each of them, one row per address); what is left out is counted and reported by notes(), never
dropped silently. Only small messages are remembered by the parse cache.
"""

from __future__ import annotations

import ipaddress
import re

import numpy as np
import polars as pl

from plantwatch.core.decode import dns_batch
from plantwatch.core.decode.dns_batch import MAX_ANSWERS, MAX_NAME
from plantwatch.core.decode.schema import APP_DNS, PACKETS
from plantwatch.core.decode.view import AppResult, PacketView, port_rows

UDP_PORTS = frozenset({53, 5353, 5355})
TCP_PORTS = frozenset({53})
MAX_JUMPS = 32         # compression pointers followed in one name
# MAX_NAME (wire octets of a name) and MAX_ANSWERS (answer records walked per message) are
# dns_batch's, which reads the usual messages many at a time by the same rules
MAX_BATCH_ADDRS = 32768  # answer addresses kept per batch (a busy resolver's worth, bounded)
_CACHE_MSG = 512       # larger messages are parsed every time, not remembered

_COLUMNS = ("dns_id", "dns_response", "dns_qname", "dns_qtype", "dns_rcode", "dns_answers")
_SCHEMA = {"row": pl.Int64(), "app": pl.UInt8(), **{c: PACKETS[c] for c in _COLUMNS}}


def select(view: PacketView, state: dict) -> np.ndarray:
    udp = port_rows(view, 17, UDP_PORTS)
    udp = udp[view.pay_len[udp] >= 12]
    tcp = port_rows(view, 6, TCP_PORTS)
    tcp = tcp[view.pay_len[tcp] >= 14]
    if tcp.size == 0:
        return udp
    return np.union1d(udp, tcp)


class BadName(Exception):
    pass


def read_labels(msg: bytes, pos: int) -> tuple[list[bytes], int]:
    """(raw labels of the name at `pos`, offset after it); raises BadName on malformed input."""
    labels: list[bytes] = []
    end_after: int | None = None
    jumps = 0
    total = 0
    n = len(msg)
    while True:
        if pos >= n:
            raise BadName
        ln = msg[pos]
        if ln == 0:
            pos += 1
            break
        if ln & 0xC0 == 0xC0:
            if pos + 1 >= n:
                raise BadName
            if end_after is None:
                end_after = pos + 2
            jumps += 1
            if jumps > MAX_JUMPS:
                raise BadName
            pos = ((ln & 0x3F) << 8) | msg[pos + 1]
            continue
        if ln & 0xC0:
            raise BadName  # extended/binary labels: not in use, tshark calls them malformed too
        if pos + 1 + ln > n:
            raise BadName
        total += ln + 1
        if total > MAX_NAME:
            raise BadName
        labels.append(msg[pos + 1 : pos + 1 + ln])
        pos += 1 + ln
    return labels, end_after if end_after is not None else pos


_PRINTABLE_ASCII = re.compile(rb"[\x20-\x7e]*")


def read_name(msg: bytes, pos: int) -> tuple[str, int]:
    """(dotted name as tshark shows it, offset after the name at `pos`)."""
    labels, end = read_labels(msg, pos)
    if not labels:
        return "<Root>", end
    raw = b".".join(labels)
    if _PRINTABLE_ASCII.fullmatch(raw):  # the usual name: nothing to replace or escape
        return raw.decode("ascii"), end
    return ".".join(_label(lab) for lab in labels), end


_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f",
            0x0D: "\\r"}


def _label(raw: bytes) -> str:
    """One label as tshark 4.0 shows it: UTF-8 (U+FFFD for invalid bytes), C0 controls and DEL
    escaped as \\a \\t \\n ... or octal \\ooo; '.', ' ' and '\\' inside a label are kept as is."""
    text = raw.decode("utf-8", errors="replace")
    if all(0x20 <= ord(ch) != 0x7F for ch in text):
        return text
    return "".join(ch if 0x20 <= ord(ch) != 0x7F else _ESCAPES.get(ord(ch), f"\\{ord(ch):03o}")
                   for ch in text)


def _skip_name(msg: bytes, pos: int) -> int:
    n = len(msg)
    while pos < n:
        ln = msg[pos]
        if ln == 0:
            return pos + 1
        if ln & 0xC0 == 0xC0:
            return pos + 2
        if ln & 0xC0:
            raise BadName
        pos += 1 + ln
    raise BadName


# parse()'s result: one tuple per message, its first six fields in _COLUMNS order
Parsed = tuple[int, bool, str | None, int | None, int | None, tuple[str, ...] | None, int]
# (id, response, qname, qtype, rcode, answer addresses, unread answers)


def parse(msg: bytes) -> Parsed | None:
    """The DNS columns of one message (without a TCP length prefix); None if not DNS."""
    if len(msg) < 12:
        return None
    flags = (msg[2] << 8) | msg[3]
    response = bool(flags & 0x8000)
    qd = (msg[4] << 8) | msg[5]
    an = (msg[6] << 8) | msg[7]
    ident = (msg[0] << 8) | msg[1]
    rcode = flags & 0x000F if response else None
    unread = an - MAX_ANSWERS if an > MAX_ANSWERS else 0
    qname = qtype = None
    n = len(msg)
    pos = 12
    addrs: list[str] = []
    try:
        for q in range(qd):
            if q == 0:
                qname, pos = read_name(msg, pos)
                if pos + 4 > n:
                    # a truncated question: tshark reports no name either
                    return ident, response, None, None, rcode, None, unread
                qtype = (msg[pos] << 8) | msg[pos + 1]
            else:
                pos = _skip_name(msg, pos)
            pos += 4
        for _ in range(min(an, MAX_ANSWERS)):
            pos = _skip_name(msg, pos)
            if pos + 10 > n:
                break
            rtype = (msg[pos] << 8) | msg[pos + 1]
            rdlen = (msg[pos + 8] << 8) | msg[pos + 9]
            rdata = pos + 10
            pos = rdata + rdlen
            if pos > n:
                break
            if rtype == 1 and rdlen == 4:
                addrs.append(f"{msg[rdata]}.{msg[rdata + 1]}.{msg[rdata + 2]}.{msg[rdata + 3]}")
            elif rtype == 28 and rdlen == 16:
                addrs.append(str(ipaddress.IPv6Address(msg[rdata:pos])))
    except BadName:
        pass
    return ident, response, qname, qtype, rcode, tuple(addrs) if addrs else None, unread


_CACHE_MAX = 8192


def _parse_cached(msg: bytes, cache: dict[bytes, Parsed | None]) -> Parsed | None:
    """parse(), remembering messages seen before: a network asks the same few names over and
    over, and two such messages differ only in their 16-bit id."""
    key = msg[2:]
    if key in cache:
        hit = cache[key]
        if hit is None:
            return None
        return ((msg[0] << 8) | msg[1], *hit[1:])
    res = parse(msg)
    if len(msg) <= _CACHE_MSG:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = res
    return res


def _one_by_one(view: PacketView, rows: np.ndarray, on_tcp: np.ndarray,
                cache: dict[bytes, Parsed | None]) -> list[tuple[int, Parsed]]:
    """(row, parse()) of the messages dns_batch leaves to parse(), through the cache."""
    out: list[tuple[int, Parsed]] = []
    for r, tcp in zip(rows.tolist(), on_tcp.tolist(), strict=True):
        msg = view.payload(r)
        if tcp:
            ln = (msg[0] << 8) | msg[1]
            # A segment that does not start a message (the rest of a long one) would parse as
            # garbage: a message starts with a length, then a header with one question.
            if ln < 12 or msg[6:8] != b"\x00\x01" or (msg[4] >> 3) & 0x0F > 6:
                continue
            msg = msg[2 : 2 + ln]
        res = _parse_cached(msg, cache) if len(msg) >= 12 else None
        if res is not None:
            out.append((r, res))
    return out


def decode(view: PacketView, rows: np.ndarray, state: dict) -> AppResult:
    on_tcp = view.ip_proto[rows] == 6
    udp = rows[~on_tcp]
    fast = dns_batch.read(view.data, view.pay[udp], view.pay_len[udp], MAX_BATCH_ADDRS)
    rest = np.ones(rows.size, dtype=bool)
    rest[np.flatnonzero(~on_tcp)[fast.done]] = False
    slow = _one_by_one(view, rows[rest], on_tcp[rest], state.setdefault("parsed", {}))

    # answer addresses in row (then answer) order, cut to the batch's budget
    slow_addrs = [(r, a) for r, res in slow if res[5] for a in res[5]]
    addr_row = np.concatenate([udp[fast.addr_msg], np.array([r for r, _ in slow_addrs], dtype=np.int64)])
    kept = np.argsort(addr_row, kind="stable")[:MAX_BATCH_ADDRS]
    state["unread"] = state.get("unread", 0) + int(fast.unread.sum()) + sum(res[6] for _, res in slow)
    state["over_batch"] = state.get("over_batch", 0) + fast.addrs + len(slow_addrs) - kept.size

    fast_rows = udp[fast.done]
    columns = pl.DataFrame({
        "row": fast_rows, "app": np.full(fast_rows.size, APP_DNS), "dns_id": fast.ident,
        "dns_response": fast.response, "dns_qname": fast.qname, "dns_qtype": fast.qtype,
        "dns_rcode": fast.rcode}, schema={c: _SCHEMA[c] for c in _SCHEMA if c != "dns_answers"},
    ).with_columns(pl.when(pl.col("dns_rcode") >= 0).then(pl.col("dns_rcode")))
    if slow:
        columns = pl.concat([columns, pl.DataFrame([(r, APP_DNS, *res[:5]) for r, res in slow],
                                                   schema=columns.schema, orient="row")]).sort("row")
    ans_rows, ans_text = _answers(view.data, fast, addr_row, kept, slow_addrs)
    answers = pl.repeat(None, columns.height, dtype=pl.String, eager=True)
    if ans_text:
        answers = answers.scatter(np.searchsorted(columns["row"].to_numpy(), ans_rows),
                                  pl.Series(ans_text, dtype=pl.String))
    return AppResult(columns=columns.with_columns(answers.alias("dns_answers")))


def _answers(data: np.ndarray, fast: dns_batch.Read, addr_row: np.ndarray, kept: np.ndarray,
             slow_addrs: list[tuple[int, str]]) -> tuple[np.ndarray, list[str]]:
    """(rows, their kept answer addresses joined by ','): `kept` indexes addr_row, the batch's
    addresses, those of `fast` first, then slow_addrs."""
    nf = fast.addr_msg.size
    if nf:
        on_fast = np.where(kept < nf, kept, 0)
        at = fast.addr_at[on_fast]
        v4 = (kept < nf) & (fast.addr_len[on_fast] == 4)
    else:
        at, v4 = np.zeros(kept.size, dtype=np.int64), np.zeros(kept.size, dtype=bool)
    others = [str(ipaddress.IPv6Address(data[a : a + 16].tobytes())) if i < nf else slow_addrs[i - nf][1]
              for i, a in zip(kept[~v4].tolist(), at[~v4].tolist(), strict=True)]
    row = addr_row[kept]
    last = np.ones(kept.size, dtype=bool)
    last[:-1] = row[1:] != row[:-1]
    return row[last], dns_batch.joined(data, at, v4, others, last)


def notes(state: dict) -> list[str]:
    """One line for what the caps left out since the last call; the counters restart."""
    unread, over = state.pop("unread", 0), state.pop("over_batch", 0)
    if not unread and not over:
        return []
    parts = []
    if over:
        parts.append(f"{over:,} answer addresses beyond {MAX_BATCH_ADDRS:,} per batch")
    if unread:
        parts.append(f"{unread:,} answer records beyond the first {MAX_ANSWERS} of a response")
    return [f"DNS: {' and '.join(parts)} were left out (not decoded, not used to name devices)"]
