"""Breaches and incidents as syslog messages for a SIEM: RFC 5424 with a CEF or JSON body.

One message per record, built from the report's dicts (plantwatch.core.views.report), so the
JSON body carries the same fields as `analyze --json`. The header's TIMESTAMP is the record's
packet time (when it happened on the wire), its structured data names the record, and wire
strings are escaped for each body's rules (CEF: `\\ | = ` and line breaks; JSON: its own; both:
control characters). A body larger than `max_bytes` sheds its evidence lists, then its
details, then is cut, so a UDP datagram and rsyslog's default 8 kB limit are respected.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from plantwatch.core.views.textsafe import printable

FORMATS = ("cef", "json")
FACILITY = 4                      # security/authorization messages
ENTERPRISE = 32473                # RFC 5612's example enterprise number, for the SD-ID
MAX_BYTES = 8000
_SYSLOG_SEV = {"critical": 2, "high": 3, "medium": 4, "low": 5}
_CEF_SEV = {"critical": 10, "high": 8, "medium": 5, "low": 3}
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})
_HOST_BAD = re.compile(r"[^\x21-\x7e]")


def _incident_severity(score: float) -> str:
    return "critical" if score >= 0.8 else "high" if score >= 0.5 else "medium"


def _cef_header(s: object) -> str:
    return printable(str(s), 512).replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(s: object, limit: int = 2000) -> str:
    text = str(s).replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n")
    return printable(text.replace("\n", "\\n").replace("\r", "\\r"), limit)


def _ms(iso: str | None) -> str | None:
    if not iso:
        return None
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return str(int(dt.timestamp() * 1000))


def _sd_value(s: object) -> str:
    return printable(str(s), 200).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _is_v4(addr: str) -> bool:
    return addr.count(".") == 3 and all(p.isdigit() for p in addr.split("."))


def cef_breach(b: dict[str, Any], version: str) -> str:
    ext = [("externalId", b["breach_id"]), ("cat", b["category"]), ("start", _ms(b["first_seen"])),
           ("end", _ms(b["last_seen"]))]
    dev, targets = b["device"], [d for d in b["devices"][1:]]
    ext.append(("src" if _is_v4(dev) else "c6a2" if ":" in dev else "shost", dev))
    if targets:
        t = targets[0]
        ext.append(("dst" if _is_v4(t) else "c6a3" if ":" in t else "dhost", t))
    ext += [("cs1Label", "phase"), ("cs1", b["phase"]), ("cs2Label", "attackIds"), ("cs2", ",".join(b["attack_ids"])),
            ("cs3Label", "incidentId"), ("cs3", b["incident_id"] if b["incident_id"] is not None else ""),
            ("cfp1Label", "score"), ("cfp1", f"{b['score']:.4f}"),
            ("cnt", len(b["evidence"]["sessions"])), ("msg", b["explanation"])]
    return (f"CEF:0|plantwatch|plantwatch|{_cef_header(version)}|{_cef_header(b['model_id'])}|"
            f"{_cef_header(b['model'])}|{_CEF_SEV.get(b['severity'], 5)}|"
            + " ".join(f"{k}={_cef_value(v)}" for k, v in ext if v is not None))


def cef_incident(i: dict[str, Any], version: str) -> str:
    dev = i["device"]
    ext = [("externalId", i["incident_id"]), ("cat", "incident"), ("start", _ms(i["first_seen"])),
           ("end", _ms(i["last_seen"])),
           ("src" if _is_v4(dev) else "c6a2" if ":" in dev else "shost", dev),
           ("cs1Label", "phases"), ("cs1", ",".join(p["phase"] for p in i["phases"])),
           ("cs2Label", "attackIds"), ("cs2", ",".join(i["attack_ids"])),
           ("cs4Label", "devices"), ("cs4", ",".join(i["devices"][:50])),
           ("cfp1Label", "score"), ("cfp1", f"{i['score']:.4f}"), ("cnt", i["breaches"]),
           ("msg", i["narrative"])]
    return (f"CEF:0|plantwatch|plantwatch|{_cef_header(version)}|incident|{_cef_header(i['title'])}|"
            f"{round(10 * float(i['score']))}|"
            + " ".join(f"{k}={_cef_value(v, 3000)}" for k, v in ext if v is not None))


def incident_summary(i: dict[str, Any]) -> dict[str, Any]:
    """The incident for a SIEM: the report's fields, its timeline as breach ids (the breaches are
    their own messages) and at most 50 devices (with the count)."""
    out = {k: v for k, v in i.items() if k not in ("timeline", "devices")}
    out["devices"] = i["devices"][:50]
    out["devices_count"] = len(i["devices"])
    out["breach_ids"] = [t["breach_id"] for t in i["timeline"]]
    return out


def _json_body(kind: str, rec: dict[str, Any]) -> str:
    return json.dumps({"type": kind, **rec}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).translate(_LINE_BREAKS)


def json_body(kind: str, rec: dict[str, Any], max_bytes: int) -> str:
    body = _json_body(kind, rec)
    if len(body.encode()) <= max_bytes:
        return body
    slim = dict(rec)
    if "evidence" in slim:
        ev = slim["evidence"]
        slim["evidence"] = {"sessions": len(ev["sessions"]), "packets": ev["packets"][:3]}
    body = _json_body(kind, slim)
    if len(body.encode()) <= max_bytes:
        return body
    slim.pop("details", None)
    for key in ("explanation", "narrative"):
        if key in slim:
            slim[key] = printable(slim[key], 1000)
    slim["truncated"] = True
    return _json_body(kind, slim)


def _hostname(host: str) -> str:
    h = _HOST_BAD.sub("", host)[:255]
    return h or "-"


def syslog_message(kind: str, rec: dict[str, Any], fmt: str, *, hostname: str, version: str,
                   max_bytes: int = MAX_BYTES) -> bytes:
    """One RFC 5424 message (no framing) for a breach or an incident report dict."""
    if kind == "breach":
        sev, when = rec["severity"], rec["first_seen"]
        sd = (f'[plantwatch@{ENTERPRISE} id="{rec["breach_id"]}" model="{_sd_value(rec["model_id"])}"'
              f' device="{_sd_value(rec["device"])}" score="{rec["score"]:.4f}"]')
    else:
        sev, when = _incident_severity(float(rec["score"])), rec["first_seen"]
        rec = incident_summary(rec)
        sd = (f'[plantwatch@{ENTERPRISE} id="{rec["incident_id"]}" device="{_sd_value(rec["device"])}"'
              f' score="{rec["score"]:.4f}" breaches="{rec["breaches"]}"]')
    pri = FACILITY * 8 + _SYSLOG_SEV.get(sev, 4)
    header = f"<{pri}>1 {when or '-'} {_hostname(hostname)} plantwatch - {kind} {sd} "
    room = max_bytes - len(header.encode())
    if fmt == "cef":
        body = cef_breach(rec, version) if kind == "breach" else cef_incident(rec, version)
    elif fmt == "json":
        body = json_body(kind, rec, room)
    else:
        raise ValueError(f"unknown syslog format {fmt!r} (cef or json)")
    data = (header + body).encode("utf-8")
    if len(data) > max_bytes:
        data = data[:max_bytes].decode("utf-8", "ignore").encode("utf-8")
    return data
