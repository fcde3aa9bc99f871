"""The unit of work between a packet source and the decoders: a batch of raw records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plantwatch.core.capture.errors import CaptureError  # noqa: F401 (re-exported)

# LINKTYPE_* values (tcpdump.org/linktypes.html) that the decoders understand.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_LOOP = 108
SUPPORTED_LINKTYPES = frozenset(
    {LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4,
     LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP, 12, 14}
)




@dataclass(frozen=True, slots=True)
class RawBatch:
    """Captured records, in packet-time order, with all bytes in one buffer.

    Packet i occupies data[offset[i] : offset[i] + caplen[i]].
    """

    data: np.ndarray      # uint8, the captured bytes of every record, concatenated
    offset: np.ndarray    # int64, start of each record in `data`
    caplen: np.ndarray    # int32, captured length
    wirelen: np.ndarray   # int32, original length on the wire
    ts: np.ndarray        # int64, nanoseconds since the Unix epoch (packet time)
    linktype: np.ndarray  # int32, LINKTYPE_* of the record's interface
    file_id: np.ndarray   # int32, index into `paths`
    frame: np.ndarray     # int64, 1-based record number within its file (tshark's frame.number)
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.offset.shape[0])
