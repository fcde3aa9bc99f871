"""What the store holds, in one small snapshot the status bar polls."""

from __future__ import annotations

from dataclasses import dataclass

from plantwatch.core.store.database import Store
from plantwatch.core.views.console.common import detection_ran, has_table, in_site, learn_end


@dataclass(frozen=True, slots=True)
class Status:
    captures: tuple[str, ...] = ()
    packets: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    devices: int = 0
    sessions: int = 0
    breaches: int = 0
    incidents: int = 0
    detection: bool = False      # the store has detection tables
    learn_end: int | None = None
    version: int = 0             # changes whenever the store's content does


def status(store: Store, count_sessions: bool = True) -> Status:
    """What the store holds. `count_sessions=False` skips the one count that grows with the
    store (sessions is then -1), for the console's frequent polling."""
    cond, site = in_site(store)
    caps = store.execute(f"SELECT path, packets, first_ts, last_ts FROM captures WHERE {cond} ORDER BY capture_id",
                         site).fetchall()
    n_dev = store.execute(f"SELECT COUNT(*) FROM devices WHERE {cond}", site).fetchone()[0]
    n_ses = store.execute(f"SELECT COUNT(*) FROM sessions WHERE {cond}", site).fetchone()[0] if count_sessions else -1
    last_ses = store.execute(f"SELECT MAX(last_ts) FROM sessions WHERE {cond}", site).fetchone()[0]
    detection = detection_ran(store)
    n_br = store.execute(f"SELECT COUNT(*) FROM breaches WHERE {cond}", site).fetchone()[0] \
        if has_table(store, "breaches") else 0
    if n_br and has_table(store, "breach_triage"):   # the breaches in force, as the breach log shows them
        n_br -= store.execute(f"SELECT COUNT(*) FROM breach_triage WHERE disposition != 'window' AND {cond}",
                              site).fetchone()[0]
    n_inc = (store.execute(f"SELECT COUNT(*) FROM incidents WHERE {cond}", site).fetchone()[0]
             if has_table(store, "incidents") else 0)
    firsts = [c[2] for c in caps if c[2] is not None]
    lasts = [c[3] for c in caps if c[3] is not None] + ([last_ses] if last_ses is not None else [])
    version = int(store.execute("PRAGMA data_version").fetchone()[0])
    return Status(
        captures=tuple(c[0] for c in caps), packets=int(sum(c[1] or 0 for c in caps)),
        first_ts=min(firsts) if firsts else None, last_ts=max(lasts) if lasts else None,
        devices=int(n_dev), sessions=int(n_ses), breaches=int(n_br), incidents=int(n_inc),
        detection=detection, learn_end=learn_end(store), version=version)
