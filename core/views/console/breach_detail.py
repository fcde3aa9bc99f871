"""One breach in full: its explanation, the numbers behind it (the model's counts and the
baseline of the device that did it) and its evidence, each evidence packet with its session."""

from __future__ import annotations

import json
from dataclasses import dataclass

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.decode.schema import APP_NAMES
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.breaches import BreachRow, breach
from plantwatch.core.views.console.common import PROTO_NAMES, fmt_ts, has_table, ip_of
from plantwatch.core.views.console.packets import session_holding


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    ref: PacketRef | None        # the packet the model cited; None: a cited session without one
    session_id: int | None
    ts: int | None
    client: str
    server: str
    server_port: int | None
    protocol: str
    session_ref: PacketRef | None = None   # the session's first packet


@dataclass(frozen=True, slots=True)
class BreachDetail:
    breach: BreachRow
    numbers: tuple[tuple[str, str], ...]      # the model's counts behind the explanation
    baseline: tuple[tuple[str, str], ...]     # the acting device's pattern of life, as learned
    evidence: tuple[EvidenceRow, ...]


def _value(v: object) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _numbers(store: Store, breach_id: int) -> tuple[tuple[str, str], ...]:
    r = store.execute("SELECT details FROM breaches WHERE breach_id = ? AND site = ?", (breach_id, store.site)).fetchone()
    try:
        d = json.loads(r[0]) if r and r[0] else {}
    except ValueError:
        d = {}
    if not isinstance(d, dict):
        return ()
    return tuple((str(k).replace("_", " "), _value(v)) for k, v in d.items())


def _baseline(store: Store, device: str) -> tuple[tuple[str, str], ...]:
    if not device or not has_table(store, "baseline_devices"):
        return ()
    r = store.execute("SELECT maturity, reasons, first_ts, last_ts, sessions, peers, ports_used, ports_served,"
                      " ics_ops FROM baseline_devices WHERE device = ? AND site = ?", (device, store.site)).fetchone()
    if r is None:
        return (("learned", f"nothing: {device} was not seen while learning"),)
    maturity, reasons, first, last, sessions, peers, used, served, ics = r
    out = [("learned", f"{maturity or '-'}" + (f" ({reasons})" if reasons else "")),
           ("seen", f"{fmt_ts(first)} to {fmt_ts(last)}" if first else "-"),
           ("sessions", str(sessions or 0)), ("peers", str(peers or 0)),
           ("ports used", _ports(used)), ("ports served", _ports(served)), ("ICS ops sent", str(ics or 0))]
    return tuple(out)


def _ports(text: str | None) -> str:
    try:
        v = json.loads(text) if text else []
    except ValueError:
        v = []
    return ", ".join(str(p) for p in v) if v else "none"


def _sessions(store: Store, ids: list[int]) -> dict[int, tuple]:
    if not ids:
        return {}
    rows = store.execute(
        "SELECT session_id, first_ts, client_hi, client_lo, server_hi, server_lo, server_port, proto, app,"
        " first_file, first_frame, last_file, last_frame FROM sessions"
        f" WHERE site = ? AND session_id IN ({', '.join('?' * len(ids))})", (store.site, *ids)).fetchall()
    return {int(r[0]): r for r in rows}


def _row(ref: PacketRef | None, sid: int | None, r: tuple | None) -> EvidenceRow:
    if r is None:
        return EvidenceRow(ref, sid, None, "", "", None, "")
    port = r[6] if r[6] is not None and r[6] >= 0 else None
    first = PacketRef(int(r[9]), int(r[10])) if r[9] is not None and r[10] is not None else None
    return EvidenceRow(ref, sid, r[1], ip_of(r[2], r[3]), ip_of(r[4], r[5]), port,
                       APP_NAMES.get(r[8] or 0, "") or PROTO_NAMES.get(r[7], str(r[7])), first)


def breach_detail(store: Store, breach_id: int) -> BreachDetail | None:
    b = breach(store, breach_id)
    if b is None:
        return None
    sessions = _sessions(store, list(b.session_ids))
    evidence: list[EvidenceRow] = []
    cited: set[int] = set()
    for ref in b.refs:
        sid = session_holding([(k, *r[9:13]) for k, r in sessions.items()], ref)
        if sid is not None:
            cited.add(sid)
        evidence.append(_row(ref, sid, sessions.get(sid) if sid is not None else None))
    for sid in b.session_ids:
        if sid not in cited:
            evidence.append(_row(None, sid, sessions.get(sid)))
    return BreachDetail(b, _numbers(store, breach_id), _baseline(store, b.device), tuple(evidence))


__all__ = ["BreachDetail", "EvidenceRow", "breach_detail"]
