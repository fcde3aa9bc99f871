"""TCP retransmissions carry no new operations: a write retransmitted is one write."""

from __future__ import annotations

import numpy as np

from plantwatch.core.capture.batch import RawBatch
from plantwatch.core.decode import Decoder
from plantwatch.core.synth import frames as F

PLC, HMI = "10.20.20.21", "10.20.20.30"
MAC_P, MAC_H = "00:1b:1b:00:00:21", "00:80:f4:00:00:30"


def _seg(seq: int, payload: bytes, *, to_plc: bool = True) -> bytes:
    if to_plc:
        return F.tcp_frame(MAC_H, MAC_P, HMI, PLC, 50000, 502, payload, seq=seq, ack=1)
    return F.tcp_frame(MAC_P, MAC_H, PLC, HMI, 502, 50000, payload, seq=seq, ack=1)


def _batch(frames_: list[bytes], first_frame: int = 1) -> RawBatch:
    data = b"".join(frames_)
    lens = np.array([len(f) for f in frames_], dtype=np.int32)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    n = len(frames_)
    return RawBatch(data=np.frombuffer(data, np.uint8), offset=offs, caplen=lens, wirelen=lens,
                    ts=np.arange(n, dtype=np.int64) * 1_000_000 + 1_700_000_000_000_000_000,
                    linktype=np.ones(n, np.int32), file_id=np.zeros(n, np.int32),
                    frame=np.arange(first_frame, first_frame + n, dtype=np.int64), paths=("t",))


def _write(trans: int) -> bytes:
    return F.modbus(trans, 1, F.mb_write_single_reg(100, 7))


def _read(trans: int) -> bytes:
    return F.modbus(trans, 1, F.mb_read_req(3, 0, 10))


def test_repeated_segment_gives_one_operation() -> None:
    w = _write(1)
    ops = Decoder().decode(_batch([_seg(1000, w), _seg(1000, w), _seg(1000 + len(w), _read(2))])).ops
    assert ops["frame"].to_list() == [1, 3]


def test_retransmission_across_batches_and_partial_overlap() -> None:
    dec = Decoder()
    w, r = _write(1), _read(2)
    first = dec.decode(_batch([_seg(5000, w)])).ops
    # the same write again, then the write coalesced with the next request (starts inside seen
    # data: a retransmission, as tshark says), then genuinely new data
    later = dec.decode(_batch([_seg(5000, w), _seg(5000, w + r), _seg(5000 + len(w + r), _read(3))],
                              first_frame=2)).ops
    assert first["frame"].to_list() == [1]
    assert later["frame"].to_list() == [4]


def test_sequence_wrap_is_not_a_retransmission() -> None:
    a, b = _read(1), _read(2)
    start = (1 << 32) - len(a)  # the second segment starts at sequence number 0
    ops = Decoder().decode(_batch([_seg(start, a), _seg(0, b)])).ops
    assert ops["frame"].to_list() == [1, 2]


def test_directions_are_separate() -> None:
    req = _read(1)
    resp = F.modbus(1, 1, F.mb_read_regs_resp(3, list(range(10))))
    ops = Decoder().decode(_batch([_seg(1000, req), _seg(1000, resp, to_plc=False)])).ops
    assert ops["frame"].to_list() == [1, 2]
