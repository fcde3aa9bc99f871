"""Session facts and device names from the IT logs: ssl joined to x509, rdp, dns, dhcp.

`session_facts` gives per uid what the packet path reads from TLS and RDP handshakes (SNI,
no-SNI, version, JA3 when the ja3 package logs it, the leaf certificate's subject and issuer,
self-signed, the RDP cookie) with the evidence ref of the log line. The leaf certificate is the
first fingerprint of `cert_chain_fps` looked up in x509.log (`fingerprint`); older Zeek logs
`cert_chain_fuids` matched to x509's `id`. Self-signed: subject equals issuer, as the packet path.

`name_packets` turns dns answers and dhcp leases into the few PACKETS columns the device
inventory names devices from (dns_* and dhcp_*), with no addresses, so they count no traffic.
"""

from __future__ import annotations

import polars as pl

from plantwatch.core.decode.addr import text_to_ip, text_to_mac
from plantwatch.core.decode.schema import PACKETS
from plantwatch.core.pipeline.zeek.reader import ZeekLog, ts_ns, unescape

FACTS: dict[str, pl.DataType] = {
    "uid": pl.String(), "tls_sni": pl.String(), "tls_no_sni": pl.Boolean(), "tls_version": pl.Int32(),
    "tls_ja3_hash": pl.String(), "cert_subject": pl.String(), "cert_issuer": pl.String(),
    "cert_self_signed": pl.Boolean(), "ev_tls": pl.Int64(), "rdp_cookie": pl.String(), "ev_rdp": pl.Int64(),
}
_TLS_VERSION = {"SSLv3": 0x0300, "TLSv10": 0x0301, "TLSv11": 0x0302, "TLSv12": 0x0303, "TLSv13": 0x0304}


def _get(log: ZeekLog, c: str) -> list:
    return log.frame[c].to_list() if c in log.frame.columns else [None] * log.height


def session_facts(logs: list[tuple[ZeekLog, int]]) -> pl.DataFrame:
    certs: dict[str, tuple[str | None, str | None]] = {}
    for log, _ in logs:
        if log.name == "x509":
            subj, iss = _get(log, "certificate.subject"), _get(log, "certificate.issuer")
            for key in ("fingerprint", "id"):
                for k, s, i in zip(_get(log, key), subj, iss, strict=True):
                    if k:
                        certs[k] = (unescape(s), unescape(i))
    rows: dict[str, dict] = {}
    for log, fid in logs:
        if log.name not in ("ssl", "rdp") or "uid" not in log.frame.columns:
            continue
        refs = [(fid << 32) | n for n in log.frame["_line"].to_list()]
        if log.name == "ssl":
            chain = _get(log, "cert_chain_fps")
            fuids = _get(log, "cert_chain_fuids")
            for k, (uid, sni, ver, ja3) in enumerate(zip(_get(log, "_key"), _get(log, "server_name"),
                                                        _get(log, "version"), _get(log, "ja3"), strict=True)):
                r = rows.setdefault(uid, {"uid": uid})
                if "ev_tls" in r:
                    continue
                leaf = next((c for c in (chain[k] or fuids[k] or "").split(",") if c), None)
                subj, iss = certs.get(leaf, (None, None)) if leaf else (None, None)
                r.update(tls_sni=unescape(sni) or None, tls_no_sni=not sni, tls_version=_TLS_VERSION.get(ver or ""),
                         tls_ja3_hash=ja3, cert_subject=subj, cert_issuer=iss,
                         cert_self_signed=None if subj is None else subj == iss, ev_tls=refs[k])
        else:
            for k, (uid, cookie) in enumerate(zip(_get(log, "_key"), _get(log, "cookie"), strict=True)):
                r = rows.setdefault(uid, {"uid": uid})
                if "ev_rdp" not in r:
                    r.update(rdp_cookie=unescape(cookie) or None, ev_rdp=refs[k])
    if not rows:
        return pl.DataFrame(schema=FACTS)
    return pl.DataFrame([{k: r.get(k) for k in FACTS} for r in rows.values()], schema=FACTS)


def name_packets(logs: list[tuple[ZeekLog, int]]) -> pl.DataFrame:
    """PACKETS-shaped rows (only the name columns set) from dns.log and dhcp.log."""
    parts = []
    for log, _ in logs:
        f = log.frame
        if log.height == 0:
            continue
        ts = f.select(ts_ns())["ts"] if "ts" in f.columns else pl.Series([None] * log.height, dtype=pl.Int64)
        if log.name == "dns" and "answers" in f.columns:
            answers = []
            for a in _get(log, "answers"):
                ips = []
                for x in (a or "").split(","):
                    try:
                        text_to_ip(x)
                    except ValueError:
                        continue
                    ips.append(x.strip())
                answers.append(",".join(ips) or None)
            parts.append(pl.DataFrame({
                "ts": ts, "dns_response": [True] * log.height,
                "dns_qname": [unescape(q) for q in _get(log, "query")],
                "dns_answers": answers,
                "dns_rcode": pl.Series(_get(log, "rcode"), dtype=pl.String).cast(pl.Int16, strict=False),
            }))
        elif log.name == "dhcp":
            macs = []
            for m in _get(log, "mac"):
                try:
                    macs.append(text_to_mac(m) if m else None)
                except ValueError:
                    macs.append(None)
            req = [a or r for a, r in zip(_get(log, "assigned_addr"), _get(log, "requested_addr"), strict=True)]
            parts.append(pl.DataFrame({
                "ts": ts, "dhcp_hostname": [unescape(h) for h in _get(log, "host_name")],
                "dhcp_chaddr": pl.Series(macs, dtype=pl.UInt64), "dhcp_req_ip": req,
            }))
    if not parts:
        return pl.DataFrame(schema=PACKETS)
    df = pl.concat(parts, how="diagonal_relaxed")
    return df.with_columns(pl.lit(None, dt).alias(c) for c, dt in PACKETS.items()
                           if c not in df.columns).select(list(PACKETS)).cast(PACKETS)
