"""Shared by the console's read API: address and time text, table probes, JSON lists, the
learn-end marker."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

from plantwatch.core.decode.addr import ip_to_text, text_to_ip
from plantwatch.core.decode.schema import APP_NAMES
from plantwatch.core.flows.sessions import FAILED_STATES
from plantwatch.core.store.database import Store

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
APP_IDS = {v: k for k, v in APP_NAMES.items() if v}
SPARK_BUCKETS = 16
_FAILED_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(FAILED_STATES)) + ")"
LEARN_END_KEY = "console.learn_end"   # state row: packet time (ns) where learning ended


class FilterError(ValueError):
    """A filter the user typed cannot be understood; str() says which part and why."""


# --------------------------------------------------------------------------- helpers

def _u(v: int | None) -> int:
    return 0 if v is None else int(v) & 0xFFFF_FFFF_FFFF_FFFF


def _s(v: int) -> int:
    """Unsigned 64-bit to the stored signed form."""
    v = int(v) & 0xFFFF_FFFF_FFFF_FFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def ip_of(hi: int | None, lo: int | None) -> str:
    return ip_to_text(_u(hi), _u(lo))


def fmt_ts(ts_ns: int | None, *, date: bool = True) -> str:
    if ts_ns is None:
        return "-"
    t = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def has_table(store: Store, name: str) -> bool:
    return store.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                         (name,)).fetchone() is not None


def in_site(store: Store, col: str = "site") -> tuple[str, tuple[str, ...]]:
    """The condition keeping a read to the store's site, and its parameter; TRUE when the store
    reads every site (a console without --site)."""
    return ("TRUE", ()) if store.all_sites else (f"{col} = ?", (store.site,))


def sites(store: Store) -> tuple[str, ...]:
    """The sites the store holds captures or devices of (what a console reading every site shows)."""
    if not store.all_sites:
        return (store.site,)
    return tuple(r[0] for r in store.execute(
        "SELECT site FROM captures UNION SELECT site FROM devices ORDER BY site"))


def check_site(store: Store, site: str) -> None:
    """A `site:` filter names a site the store holds (FilterError otherwise)."""
    held = sites(store)
    if site not in held:
        raise FilterError(f"site:{site}: no such site in this store (sites: {', '.join(held)})")


def detection_ran(store: Store) -> bool:
    """The detection engine has learned a baseline or written breaches into this store."""
    if not has_table(store, "breaches"):
        return False
    cond, site = in_site(store)
    if store.execute(f"SELECT 1 FROM breaches WHERE {cond} LIMIT 1", site).fetchone():
        return True
    return has_table(store, "baseline_meta") and \
        store.execute(f"SELECT 1 FROM baseline_meta WHERE {cond} LIMIT 1", site).fetchone() is not None


def columns(store: Store, table: str) -> tuple[str, ...]:
    return tuple(r[1] for r in store.execute(f"PRAGMA table_info({table})").fetchall())


def _json_list(v: object) -> tuple:
    if v is None or v == "":
        return ()
    if isinstance(v, (list, tuple)):
        return tuple(v)
    try:
        out = json.loads(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (v,)
    return tuple(out) if isinstance(out, list) else (out,)


def _addr_params(ip: str) -> tuple[int, int]:
    try:
        hi, lo = text_to_ip(ip)
    except ValueError:
        raise FilterError(f"not an IP address: {ip!r}") from None
    return _s(hi), _s(lo)


def learn_end(store: Store) -> int | None:
    """Packet time at which learning ended (devices first seen after it are new), if known: the
    console's own marker (demo, `open --learn`), else the baseline's first run's end."""
    r = store.execute("SELECT value FROM state WHERE name = ? AND site = ? AND sensor = ''",
                      (LEARN_END_KEY, store.site)).fetchone()
    if r and r[0] is not None:
        with contextlib.suppress(ValueError):
            return int(r[0] if isinstance(r[0], (int, str)) else bytes(r[0]).decode())
    return None


def set_learn_end(store: Store, ts_ns: int) -> None:
    store.execute("INSERT INTO state (site, name, value) VALUES (?, ?, ?) ON CONFLICT (site, sensor, name)"
                  " DO UPDATE SET value=excluded.value", (store.site, LEARN_END_KEY, str(int(ts_ns)).encode()))
