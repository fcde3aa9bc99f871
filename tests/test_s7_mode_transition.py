"""An S7 userdata mode-transition push (parameter head 01 00 10, function group 0, the CPU
reporting STOP) is an ACTION the PLC sends: decoded as such (tshark agrees: see
tests/test_tshark_ics.py's synthetic capture) and a breach at cold start, on the PLC."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from plantwatch.core.decode import Decoder
from plantwatch.core.decode.ics import S7_MODE_TRANSITION
from plantwatch.core.decode.schema import CLS_ACTION, DIR_REQUEST
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth import frames as F
from plantwatch.core.synth.pcapwriter import write_pcap
from tests import test_decode_ics as U

HMI, PLC = "10.20.20.30", "10.20.20.21"
MH, MP = "02:00:00:00:00:30", "00:1b:1b:00:00:21"
PUSH_FRAME = 14


def _capture(path: Path) -> Path:
    """An HMI polls a PLC over S7; the PLC then reports that it went to STOP (frame 14)."""
    t = 1_700_000_000_000_000_000
    recs = [(t, F.tcp_frame(MH, MP, HMI, PLC, 40002, 102, seq=999, flags=0x02)),
            (t + 1, F.tcp_frame(MP, MH, PLC, HMI, 102, 40002, seq=4999, ack=1000, flags=0x12))]
    seq = {True: 1000, False: 5000}
    items = [(True, U.S7_CR), (False, U.S7_CC), (True, U.S7_SETUP)]
    items += [(True, U.S7_READ), (False, U.S7_READ_ACK)] * 4
    items += [(False, F.s7_mode_transition(0, mode=0))]
    for to_plc, pay in items:
        t += 1_000_000_000
        a, b, ma, mb, pa, pb = (HMI, PLC, MH, MP, 40002, 102) if to_plc else (PLC, HMI, MP, MH, 102, 40002)
        recs.append((t, F.tcp_frame(ma, mb, a, b, pa, pb, pay, seq=seq[to_plc], ack=seq[not to_plc])))
        seq[to_plc] += len(pay)
    write_pcap(path, recs)
    return path


def test_the_push_decodes_as_an_action_the_plc_sends(tmp_path: Path) -> None:
    from plantwatch.core.capture.files import read_batches

    path = _capture(tmp_path / "stop.pcap")
    dec = Decoder()
    ops = pl.concat([dec.decode(b).ops for b in read_batches([str(path)])])
    push = ops.filter(pl.col("frame") == PUSH_FRAME).row(0, named=True)
    assert push["code"] == S7_MODE_TRANSITION << 8 and push["group"] == S7_MODE_TRANSITION and push["sub"] == 0
    assert push["cls"] == CLS_ACTION and push["direction"] == DIR_REQUEST
    assert push["name"] == "PLC reports STOP (mode transition)"


def test_a_plc_reporting_stop_is_a_breach_at_cold_start(tmp_path: Path) -> None:
    path = _capture(tmp_path / "stop.pcap")
    with Store(tmp_path / "cold.sqlite") as st:
        res = Ingest(st).run([path]).detection
    assert res.cold
    b = [b for b in res.breaches if b.model == "ics.new_action"]
    assert len(b) == 1, [(x.model, x.explanation) for x in res.breaches]
    assert b[0].device == PLC and b[0].devices == [PLC, HMI]
    assert b[0].details["critical"] == ["PLC reports STOP (mode transition)"]
    assert "PLC reports STOP (mode transition) change(s) the controller's state" in b[0].explanation
    assert b[0].score >= 0.9
