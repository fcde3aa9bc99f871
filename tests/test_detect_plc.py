"""The controller protocols reach detection unchanged: at a cold start, a FINS Stop, an ADS Write
Control to STOP and a MELSEC Remote Stop each raise the critical-action breach, naming the
operation and pointing at its frame (the frames are those of tests/test_tshark_plc.py and
tests/test_decode_plc.py, each checked there against tshark or the published layout)."""

from __future__ import annotations

import struct
from pathlib import Path

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth import frames as F
from plantwatch.core.synth.pcapwriter import write_pcap
from tests.test_decode_plc import MC_BATCH_READ, MC_RESPONSE, MC_STOP
from tests.test_tshark_plc import FINS_FRAMES, ams


def _capture(path: Path) -> dict[str, int]:
    """Three engineering stations each read from a controller, then stop it; returns the frame
    number of each stop by source address."""
    recs: list[tuple[int, bytes]] = []
    stops: dict[str, int] = {}
    t = 1_700_000_000_000_000_000
    flows = [
        ("10.0.1.5", "10.0.1.20", 17, 9600, [(True, FINS_FRAMES[0]), (False, FINS_FRAMES[1]),
                                              (True, FINS_FRAMES[4])]),
        ("10.0.1.6", "10.0.1.21", 6, 48898, [(True, ams(4, 1, b"")),
                                              (False, ams(4, 1, struct.pack("<IHH", 0, 5, 0), resp=True)),
                                              (True, ams(5, 2, struct.pack("<HHI", 6, 0, 0)))]),
        ("10.0.1.7", "10.0.1.22", 6, 5002, [(True, MC_BATCH_READ), (False, MC_RESPONSE),
                                             (True, MC_STOP)]),
    ]
    for k, (cli, srv, proto, port, items) in enumerate(flows):
        mc, ms = f"02:00:00:00:01:0{k}", f"02:00:00:00:02:0{k}"
        cport = 40000 + k
        seq = {True: 1000, False: 5000}
        if proto == 6:
            recs.append((t, F.tcp_frame(mc, ms, cli, srv, cport, port, seq=999, flags=0x02)))
            recs.append((t + 1, F.tcp_frame(ms, mc, srv, cli, port, cport, seq=4999, ack=1000,
                                            flags=0x12)))
            t += 2
        for to_srv, pay in items:
            t += 50_000_000
            a, b, ma, mb = (cli, srv, mc, ms) if to_srv else (srv, cli, ms, mc)
            pa, pb = (cport, port) if to_srv else (port, cport)
            if proto == 6:
                fr = F.tcp_frame(ma, mb, a, b, pa, pb, pay, seq=seq[to_srv], ack=seq[not to_srv])
                seq[to_srv] += len(pay)
            else:
                fr = F.udp_frame(ma, mb, a, b, pa, pb, pay)
            recs.append((t, fr))
        stops[cli] = len(recs)  # the last item of each flow is the stop
    write_pcap(path, recs)
    return stops


def test_cold_start_raises_the_stops(tmp_path: Path) -> None:
    path = tmp_path / "plc_stops.pcap"
    stops = _capture(path)
    with Store(tmp_path / "cold.sqlite") as st:
        res = Ingest(st).run([path]).detection
    assert res.cold
    want = {"10.0.1.5": "Stop", "10.0.1.6": "Write Control (STOP)", "10.0.1.7": "Remote Stop"}
    got = {}
    for b in res.breaches:
        for name in b.details.get("critical", []):
            got[b.device] = (name, b)
    assert {d: n for d, (n, _) in got.items()} == want
    for dev, (name, b) in got.items():
        assert b.model == "ics.new_action"
        assert stops[dev] in [PacketRef.unpack(r).frame for r in b.refs]
        assert name in b.explanation
