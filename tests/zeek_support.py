"""Helpers for the Zeek tests: one capture through the packet path, its logs through the Zeek
path, both reduced to what the differential compares."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl

from plantwatch.core.capture.files import read_batches
from plantwatch.core.decode import Decoder
from plantwatch.core.decode.addr import ip_to_text
from plantwatch.core.flows.sessions import SessionTracker, session_ops
from plantwatch.core.pipeline.zeek.build import build
from plantwatch.core.pipeline.zeek.reader import read_log

ZEEK_DATA = Path(__file__).parent / "data" / "zeek"


def packet_sessions(pcap: Path) -> pl.DataFrame:
    dec, tracker, out = Decoder(), SessionTracker(), []
    for batch in read_batches([pcap]):
        d = dec.decode(batch)
        out.append(tracker.update(d.packets, d.ops))
    out.append(tracker.flush())
    return pl.concat(out)


def zeek_sessions(folder: Path) -> pl.DataFrame:
    logs = [(read_log(p), i + 1) for i, p in enumerate(sorted(folder.glob("*.log")))]
    b = build(logs)
    return pl.concat([b.ended, b.open])


def tuples(s: pl.DataFrame) -> Counter:
    """(proto, client, client port, server, server port, state) of each session."""
    return Counter(
        (p, ip_to_text(ch, cl), cp, ip_to_text(sh, sl), sp, st)
        for p, ch, cl, cp, sh, sl, sp, st in s.select(
            "proto", "client_hi", "client_lo", "client_port", "server_hi", "server_lo", "server_port",
            "state").iter_rows())


def op_counts(s: pl.DataFrame) -> Counter:
    """Operations by (app, code, request?) over all sessions."""
    so = session_ops(s)
    c: Counter = Counter()
    for app, code, req, n in so.select("app", "code", "requests", "count").iter_rows():
        c[(app, code, req)] += n
    return c


MASK = "XXXXXXXXXX.XXXXXX"


def unmask(folder: Path, out: Path) -> Path:
    """Copies of `folder`'s logs with the masked btest times replaced by times from its capture:
    a line of a connection gets that session's first packet time (the packet path's, matched by
    addresses and ports in either direction); other lines the capture's first packet time."""
    pcap = next(folder.glob("*.pcap"))
    s = packet_sessions(pcap)
    when: dict[tuple, int] = {}
    for ch, cl, cp, sh, sl, sp, t in s.select("client_hi", "client_lo", "client_port", "server_hi",
                                              "server_lo", "server_port", "first_ts").iter_rows():
        a, b = (ip_to_text(ch, cl), str(cp)), (ip_to_text(sh, sl), str(sp))
        when.setdefault((a, b), t)
        when.setdefault((b, a), t)
    t0 = int(s["first_ts"].min())
    out.mkdir(parents=True, exist_ok=True)
    for log in folder.glob("*.log"):
        fields: list[str] | None = None
        lines = []
        for line in log.read_text().splitlines():
            if line.startswith("#fields"):
                fields = line.split("\t")[1:]
            if line.startswith("#") or MASK not in line:
                lines.append(line)
                continue
            cols = line.split("\t")
            t = t0
            if fields and "id.orig_h" in fields:
                i = fields.index("id.orig_h")
                t = when.get(((cols[i], cols[i + 1]), (cols[i + 2], cols[i + 3])), t0)
            elif len(cols) > 5:  # header-less ICSNPP lines: ts uid id.orig_h id.orig_p id.resp_h id.resp_p ...
                t = when.get(((cols[2], cols[3]), (cols[4], cols[5])), t0)
            stamp = f"{t // 1_000_000_000}.{(t // 1000) % 1_000_000:06d}"
            lines.append("\t".join(stamp if c == MASK else c for c in cols))
        (out / log.name).write_text("\n".join(lines) + "\n")
    return out
