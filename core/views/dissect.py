"""The full Wireshark decode of one packet, through pyshark, for the console's drill-down.

Thread-only: it runs tshark as a subprocess and waits for it, so call it from a worker thread,
never from the UI's event loop (pyshark gets an event loop of its own here). Problems come back
as `DissectError` with one plain sentence (the capture file is gone, tshark is missing, the frame
is not in the file), never as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path


class DissectError(Exception):
    """The packet cannot be decoded; str() says why in one sentence."""


@dataclass(frozen=True, slots=True)
class Node:
    label: str                         # "Internet Protocol Version 4, Src: ..." (from the wire: untrusted)
    children: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class Dissection:
    path: str
    frame: int
    summary: str
    layers: tuple[Node, ...]


def tshark_path() -> str | None:
    return shutil.which("tshark")


def dissect(path: str | Path, frame: int, *, timeout: float = 30.0, shown_frame: int | None = None,
            source: str | None = None) -> Dissection:
    """Decode frame number `frame` (1-based, tshark's frame.number) of the capture at `path`.
    For a packet cut out of a bigger capture (views/packet_cut.py), `shown_frame` and `source`
    are its frame number and file there: the result names those."""
    p = Path(path)
    if not p.exists():
        raise DissectError(f"the capture file {p} is gone (moved or deleted), so its packets cannot be decoded")
    if not p.is_file():
        raise DissectError(f"{p} is not a capture file")
    tshark = tshark_path()
    if tshark is None:
        raise DissectError("tshark is not installed, so packets cannot be decoded "
                           "(Debian/Ubuntu: sudo apt-get install tshark)")
    try:
        import pyshark
    except ImportError:  # pragma: no cover - a declared dependency
        raise DissectError("pyshark is not installed (pip install pyshark)") from None
    loop = asyncio.new_event_loop()
    cap = None
    try:
        asyncio.set_event_loop(loop)
        cap = pyshark.FileCapture(str(p), display_filter=f"frame.number == {int(frame)}",
                                  tshark_path=tshark, eventloop=loop)
        cap.set_debug(False)
        try:
            pkt = cap.next()
        except StopIteration:
            raise DissectError(f"frame {frame} is not in {p}") from None
        except Exception as e:  # pyshark/tshark failures come in many types
            raise DissectError(f"tshark could not decode {p}: {_one_line(e)}") from None
        layers = tuple(_layer_node(layer) for layer in pkt.layers)
        number = int(shown_frame if shown_frame is not None else frame)
        summary = f"frame {number}: {pkt.length} bytes, " + " / ".join(layer.layer_name for layer in pkt.layers)
        return Dissection(source or str(p), number, summary, layers)
    finally:
        if cap is not None:
            with contextlib.suppress(Exception):  # closing tshark must not mask the result
                cap.close()
        loop.close()
        asyncio.set_event_loop(None)


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else type(e).__name__


def _layer_node(layer) -> Node:
    """A pyshark layer (PDML) as a tree of 'showname' labels, nested as Wireshark nests them."""
    children = []
    for name in layer.field_names:
        try:
            fld = layer.get_field(name)
        except Exception:  # noqa: BLE001 - a field pyshark cannot render is skipped
            continue
        if fld is None:
            continue
        children.append(_field_node(fld))
    title = getattr(layer, "_layer_name", None) or layer.layer_name
    return Node(label=_layer_title(layer, title), children=tuple(children))


def _layer_title(layer, fallback: str) -> str:
    show = getattr(layer, "_all_fields", None)
    name = getattr(layer, "layer_name", fallback)
    return {"eth": "Ethernet II", "ip": "Internet Protocol Version 4", "ipv6": "Internet Protocol Version 6",
            "tcp": "Transmission Control Protocol", "udp": "User Datagram Protocol",
            "vlan": "802.1Q Virtual LAN"}.get(name, name.upper()) if show is not None else fallback


def _field_node(fld) -> Node:
    label = getattr(fld, "showname", None) or f"{fld.name}: {fld.get_default_value()}"
    alts = getattr(fld, "alternate_fields", None) or []
    kids = tuple(Node(label=getattr(a, "showname", None) or str(a.get_default_value())) for a in alts)
    return Node(label=str(label), children=kids)
