"""Connections (sessions) matching a filter, newest first."""

from __future__ import annotations

from dataclasses import dataclass, field

from plantwatch.core.decode.schema import APP_NAMES
from plantwatch.core.detection.models import title_of
from plantwatch.core.store.database import Store
from plantwatch.core.views.console import vocabulary
from plantwatch.core.views.console.common import (
    _FAILED_SQL,
    PROTO_NAMES,
    check_site,
    has_table,
    in_site,
    ip_of,
)
from plantwatch.core.views.console.filters import ConnFilter


@dataclass(frozen=True, slots=True)
class ConnRow:
    session_id: int
    first_ts: int
    last_ts: int
    client: str
    client_port: int | None
    server: str
    server_port: int | None
    transport: str
    protocol: str
    state: str
    packets: int
    bytes_c2s: int
    bytes_s2c: int
    facts: str                  # SNI / certificate / RDP cookie, raw (untrusted)
    capture_id: int | None
    frame: int | None           # first packet of the session in its capture
    site: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    """Which page of the newest-first list: rows older than `before` or newer than `after`
    (keys are (first_ts, session_id, site) of a row shown), the oldest rows, else the newest."""

    before: tuple[int, int, str] | None = None
    after: tuple[int, int, str] | None = None
    oldest: bool = False


@dataclass(frozen=True, slots=True)
class Connections:
    rows: tuple[ConnRow, ...]
    total: int                  # matching rows (rows is cut to the limit)
    filter: ConnFilter = field(default_factory=ConnFilter)
    newer: bool = False         # rows newer than the first shown exist
    older: bool = False         # rows older than the last shown exist
    page: Page = field(default_factory=Page)

    @staticmethod
    def key(row: ConnRow) -> tuple[int, int, str]:
        return (row.first_ts, row.session_id, row.site)


_CONN_COLS = ("session_id, first_ts, last_ts, client_hi, client_lo, client_port, server_hi, server_lo,"
              " server_port, proto, app, state, pkts_c2s + pkts_s2c, bytes_c2s, bytes_s2c, tls_sni,"
              " tls_no_sni, cert_subject, cert_self_signed, rdp_cookie, first_file, first_frame, ev_rdp, site")


def _conn_row(r: tuple) -> ConnRow:
    (sid, first, last, chi, clo, cport, shi, slo, sport, proto, app, state, pk, bc, bs, sni,
     nosni, subj, selfs, cookie, ffile, fframe, ev_rdp, site) = r
    facts = []
    if sni:
        facts.append(f"sni={sni}")
    elif nosni:
        facts.append("no SNI")
    if subj:
        facts.append(f"cert={subj}" + (" (self-signed)" if selfs else ""))
    if cookie:
        facts.append(f"rdp user={cookie}")
    return ConnRow(session_id=int(sid), first_ts=int(first or 0), last_ts=int(last or 0),
                   client=ip_of(chi, clo), client_port=cport if cport is not None and cport >= 0 else None,
                   server=ip_of(shi, slo), server_port=sport if sport is not None and sport >= 0 else None,
                   transport=PROTO_NAMES.get(proto, str(proto)), protocol=APP_NAMES.get(vocabulary.listed_protocol(app, (ev_rdp or 0) > 0), "") or "",
                   state=state or "", packets=int(pk or 0), bytes_c2s=int(bc or 0), bytes_s2c=int(bs or 0),
                   facts="; ".join(facts), capture_id=ffile, frame=fframe, site=site)


def _model_sessions(store: Store, model: str) -> list[tuple[str, int]] | None:
    """(site, session id) the breaches of the models `model` names (vocabulary.models_for) cite."""
    if not has_table(store, "breach_sessions"):
        return None
    ids = vocabulary.models_for(model)
    values = ids + [title_of(i) for i in ids]      # a store not migrated yet holds titles
    sql = f"b.model IN ({', '.join('?' * len(values))})"
    cond, site = in_site(store, "b.site")
    return [(r[0], int(r[1])) for r in store.execute(
        "SELECT DISTINCT b.site, bs.session_id FROM breach_sessions bs JOIN breaches b USING (breach_id, site)"
        f" WHERE {sql} AND {cond}", (*values, *site))]


def connections(store: Store, flt: ConnFilter | None = None, limit: int = 500,
                count: bool = True, page: Page | None = None) -> Connections:
    """Sessions matching `flt`, newest first, at most `limit` of them: the newest, or the page
    `page` names (keyset paging on (first_ts, session_id): any page costs one index range).
    `count=False` skips counting every match (a scan of a million index entries without a
    filter): `total` is then exact only when one page holds every match, else -1 (see
    `count_connections`)."""
    flt = flt or ConnFilter()
    page = page or Page()
    where, params = _conn_where(store, flt)
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    keyset, kparams, order = "", [], "DESC"
    if page.before is not None:
        keyset, kparams = "(first_ts, session_id, site) < (?, ?, ?)", list(page.before)
    elif page.after is not None:
        keyset, kparams, order = "(first_ts, session_id, site) > (?, ?, ?)", list(page.after), "ASC"
    elif page.oldest:
        order = "ASC"
    page_where = " AND ".join(w for w in (" AND ".join(where), keyset) if w)
    rows = store.execute(f"SELECT {_CONN_COLS} FROM sessions{' WHERE ' + page_where if page_where else ''}"
                         f" ORDER BY first_ts {order}, session_id {order}, site {order} LIMIT ?",
                         (*params, *kparams, limit + 1)).fetchall()
    beyond = len(rows) > limit
    rows = rows[:limit]
    if order == "ASC":
        rows.reverse()
    # which side has more: the side the query ran towards is known; the other side holds the
    # page the user came from (or nothing, for the newest and the oldest page)
    if order == "DESC":
        newer, older = page.before is not None, beyond
    else:
        newer, older = beyond, page.after is not None
    if count:
        total = int(store.execute(f"SELECT COUNT(*) FROM sessions{sql_where}", params).fetchone()[0])
    else:
        total = len(rows) if not (newer or older) else -1
    return Connections(rows=tuple(_conn_row(r) for r in rows), total=total, filter=flt,
                       newer=newer, older=older, page=page)


def count_connections(store: Store, flt: ConnFilter | None = None) -> int:
    """How many sessions match `flt`."""
    where, params = _conn_where(store, flt or ConnFilter())
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    return int(store.execute(f"SELECT COUNT(*) FROM sessions{sql_where}", params).fetchone()[0])


def _conn_where(store: Store, flt: ConnFilter) -> tuple[list[str], list]:
    cond, site = in_site(store)
    where: list[str] = [] if cond == "TRUE" else [cond]
    params: list = list(site)
    if flt.site is not None:
        check_site(store, flt.site)
        where.append("site = ?")
        params.append(flt.site)
    if flt.device:
        ors = []
        for hi, lo in vocabulary.device_addrs(store, flt.device)[:50]:
            ors.append("(client_hi = ? AND client_lo = ?) OR (server_hi = ? AND server_lo = ?)")
            params += [hi, lo, hi, lo]
        where.append("(" + " OR ".join(ors) + ")")
    if flt.port is not None:
        where.append("server_port = ?")
        params.append(flt.port)
    if flt.proto:
        sql, values = vocabulary.protocol_sql(flt.proto)
        where.append(sql)
        params += values
    if flt.state:
        if flt.state == "failed":
            where.append(f"state IN {_FAILED_SQL}")
        else:
            where.append("state = ?")
            params.append(flt.state)
    if flt.since is not None:
        where.append("last_ts >= ?")
        params.append(flt.since)
    if flt.until is not None:
        where.append("first_ts <= ?")
        params.append(flt.until)
    if flt.model:
        ids = _model_sessions(store, flt.model) or [("", -1)]
        where.append(f"(site, session_id) IN (VALUES {', '.join(['(?, ?)'] * len(ids))})")
        params += [v for pair in ids for v in pair]
    for w in flt.text:
        where.append("(LOWER(COALESCE(tls_sni, '')) LIKE ? OR LOWER(COALESCE(rdp_cookie, '')) LIKE ?"
                     " OR LOWER(COALESCE(cert_subject, '')) LIKE ? OR state = ?)")
        params += [f"%{w}%", f"%{w}%", f"%{w}%", w]
    return where, params
