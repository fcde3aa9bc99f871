"""The one filter vocabulary of the console: which words name a model, a protocol, a connection
state, a role or a device. Every filter resolves its values here, and a value that names nothing
is a FilterError (shown in the filter bar), never a silently empty list.

- Models: by id or title (or a part of either), else by a word of their description
  (`model:scan` finds the models that fire on scans).
- Protocols: as the connection list names them (`rdp` includes RDP inside TLS), and tcp/udp/icmp.
- Devices: by address, or by name (a DHCP/DNS/NetBIOS name, or its first label: `wincc01`).
"""

from __future__ import annotations

import re

from plantwatch.core.decode.schema import APP_RDP, APP_TLS
from plantwatch.core.detection.models import MODELS, matching_models
from plantwatch.core.flows import schema as flows
from plantwatch.core.inventory import roles
from plantwatch.core.store.database import Store
from plantwatch.core.views.console.common import (
    APP_IDS,
    PROTO_NAMES,
    FilterError,
    _addr_params,
    in_site,
)

CONN_STATES = frozenset({flows.STATE_ATTEMPTED, flows.STATE_ESTABLISHED, flows.STATE_REFUSED,
                         flows.STATE_UNANSWERED, flows.STATE_RESET, flows.STATE_CLOSED,
                         flows.STATE_ANSWERED, flows.STATE_UNREACHABLE, flows.STATE_ONEWAY, "failed"})
ROLES = frozenset(getattr(roles, n) for n in dir(roles) if n.startswith("ROLE_"))
_WORD = re.compile(r"[a-z0-9]+")


def models_named(text: str) -> list[str]:
    """Ids of the models `text` names (id or title, or a part of either; else a word of their
    description, from 3 letters); empty when none."""
    t = text.strip().lower()
    if not t:
        return []
    ids = matching_models(t)
    if not ids and len(t) >= 3:
        ids = [m.id for m in MODELS.values()
               if any(w.startswith(t) for w in _WORD.findall(m.description.lower()))]
    return ids


def models_for(text: str) -> list[str]:
    """Ids of the models `text` names; FilterError when it names none."""
    if not text.strip():
        raise FilterError("model: give a model id or a word of its title, e.g. model:ics.new_action")
    ids = models_named(text)
    if not ids:
        raise FilterError(f"model:{text}: no model by that id, title or word "
                          "(e.g. ics.new_action, rdp, scan)")
    return ids


def protocol(text: str) -> str:
    v = text.strip().lower()
    if v not in APP_IDS and v not in PROTO_NAMES.values():
        raise FilterError(f"proto:{text}: unknown protocol (e.g. s7comm, modbus, rdp, tls, dns, tcp, udp)")
    return v


def listed_protocol(app: int | None, rdp_seen: bool) -> int:
    """The application a connection is listed under: RDP carried in TLS is RDP."""
    return APP_RDP if rdp_seen and app in (APP_TLS, APP_RDP) else int(app or 0)


def protocol_sql(name: str) -> tuple[str, list]:
    """SQL on `sessions` for the connections listed as protocol `name` (the `app` index leads)."""
    if name == "rdp":
        return "(app IN (?, ?) AND (app = ? OR ev_rdp > 0))", [APP_TLS, APP_RDP, APP_RDP]
    if name == "tls":
        return "(app = ? AND NOT COALESCE(ev_rdp, 0) > 0)", [APP_TLS]
    if name in APP_IDS:
        return "app = ?", [APP_IDS[name]]
    return "proto = ?", [{v: k for k, v in PROTO_NAMES.items()}[name]]


def conn_state(text: str) -> str:
    v = text.strip().lower()
    if v not in CONN_STATES:
        raise FilterError(f"state:{text}: unknown state (use {', '.join(sorted(CONN_STATES))})")
    return v


def role(text: str) -> str:
    """A role, or the start of one (role:eng)."""
    v = text.strip().lower()
    if not v or not any(r.startswith(v) for r in ROLES):
        raise FilterError(f"role:{text}: unknown role (use {', '.join(sorted(ROLES))})")
    return v


def device_addrs(store: Store, text: str) -> list[tuple[int, int]]:
    """The (hi, lo) of the device `text` names: an address, else device names (exactly, or the
    first label of a dotted name), case-insensitive. FilterError when none."""
    try:
        return [_addr_params(text)]
    except FilterError:
        pass
    t = text.strip().lower()
    cond, site = in_site(store)
    rows = store.execute(
        "SELECT DISTINCT hi, lo FROM devices WHERE (LOWER(name) = ? OR LOWER(name) LIKE ? OR LOWER(names) LIKE ?"
        f" OR LOWER(names) LIKE ?) AND {cond}", (t, f"{t}.%", f'%"{t}"%', f'%"{t}.%', *site)).fetchall()
    if not rows:
        raise FilterError(f"device:{text}: no device has that address or name")
    return [(int(hi), int(lo)) for hi, lo in rows]


__all__ = ["CONN_STATES", "ROLES", "models_named", "models_for", "protocol", "listed_protocol", "protocol_sql",
           "conn_state", "role", "device_addrs"]
