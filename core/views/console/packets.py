"""Where an evidence packet is: its reference and the capture file that holds it."""

from __future__ import annotations

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
