"""Where an evidence packet is: its reference, the capture file that holds it, and the session
it belongs to (the packet view steps through that session)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.store.database import Store


@dataclass(frozen=True, slots=True)
class PacketLocation:
    ref: PacketRef
    path: str | None            # None: the capture is not in the store

    @property
    def capture_id(self) -> int:
        return self.ref.capture_id

    @property
    def frame(self) -> int:
        return self.ref.frame


def packet_location(store: Store, ref: PacketRef) -> PacketLocation:
    r = store.execute("SELECT path FROM captures WHERE capture_id = ?", (ref.capture_id,)).fetchone()
    return PacketLocation(ref, r[0] if r else None)


def session_holding(spans: Sequence[tuple], ref: PacketRef) -> int | None:
    """Which of the sessions (session_id, first_file, first_frame, last_file, last_frame) holds
    packet `ref`: the one whose frame span in that capture covers it (the narrowest, when
    spans nest)."""
    best: tuple[int, int] | None = None
    for sid, ff, fframe, lf, lframe in spans:
        if ff is None or lf is None or not ff <= ref.capture_id <= lf:
            continue
        lo = fframe if ff == ref.capture_id else 1
        hi = lframe if lf == ref.capture_id else 1 << 62
        if lo <= ref.frame <= hi and (best is None or hi - lo < best[0]):
            best = (hi - lo, int(sid))
    return best[1] if best else None


def session_of_ref(store: Store, ref: PacketRef, candidates: Sequence[int]) -> int | None:
    """Which of the sessions `candidates` (a breach's evidence sessions) holds packet `ref`."""
    ids = [int(s) for s in candidates][:500]
    if not ids:
        return None
    rows = store.execute(
        "SELECT session_id, first_file, first_frame, last_file, last_frame FROM sessions"
        f" WHERE site = ? AND session_id IN ({', '.join('?' * len(ids))})", (store.site, *ids)).fetchall()
    return session_holding(rows, ref)
