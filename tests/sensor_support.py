"""Helpers shared by the sensor tests: a small incident built with core/synth/frames.py, ring files."""

from __future__ import annotations

import struct
from pathlib import Path

from plantwatch.core.capture.files import read_batches
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import PcapngWriter

SEC = 1_000_000_000
T0 = 1_772_431_200 * SEC
ATTACKER = ("02:00:00:00:01:57", "10.10.10.157")
PLCS = [(f"02:00:00:00:02:{i:02x}", f"10.20.20.{i}") for i in (10, 11, 12)]
ROUTER = "02:00:00:00:00:01"
ZONES_TOML = """
[[zone]]
name = "Computing"
kind = "it"
cidrs = ["10.10.10.0/24"]

[[zone]]
name = "Industrial"
kind = "ot"
cidrs = ["10.20.20.0/24"]
"""


def incident(t0: int = T0, normal: int = 200) -> list[tuple[int, bytes]]:
    """A new laptop scans ICS ports, then talks S7 to a PLC: SZL reads, a stop, a download.
    Before it, `normal` Modbus polls between an HMI and a PLC."""
    recs: list[tuple[int, bytes]] = []
    t = t0
    hmi_mac, hmi_ip = "02:00:00:00:01:20", "10.10.10.20"
    mb = _tcp(hmi_mac, hmi_ip, PLCS[1][0], PLCS[1][1], 50000, 502)
    recs += mb.handshake(t)
    for i in range(normal // 4):
        t += 20_000_000
        recs += mb.exchange(t, f.modbus(i, 1, f.mb_read_req(3, 0, 4)),
                            f.modbus(i, 1, f.mb_read_regs_resp(3, [1, 2, 3, 4])))
    t += 50_000_000
    amac, aip = ATTACKER
    sport = 40000
    for mac, ip in [*PLCS, ("02:00:00:00:02:20", "10.20.20.20"), ("02:00:00:00:02:21", "10.20.20.21")]:
        for port in (102, 502, 44818, 20000):
            s = _tcp(amac, aip, mac, ip, sport, port)
            sport += 1
            recs += s.refused(t)
            t += 3_000_000
    s7 = _tcp(amac, aip, PLCS[0][0], PLCS[0][1], 41000, 102)
    recs += s7.handshake(t)
    t += 5_000_000
    recs += s7.exchange(t, f.tpkt(f.cotp_cr()), f.tpkt(f.cotp_cc()))
    t += 5_000_000
    pdu = 1
    for req, resp in [
        (f.s7_setup_comm(pdu), f.s7_setup_comm_ack(pdu)),
        (f.s7_szl_read(pdu + 1, 0x0011), f.s7_szl_response(pdu + 1, 0x0011, 0, f.szl_0011_entries())),
        (f.s7_szl_read(pdu + 2, 0x001C), f.s7_szl_response(pdu + 2, 0x001C, 0, [b"\x00" * 34])),
        (f.s7_plc_stop(pdu + 3), f.s7_plc_stop_ack(pdu + 3)),
        (f.s7_request_download(pdu + 4, "OB", 1), f.s7_request_download_ack(pdu + 4)),
        (f.s7_delete_block(pdu + 5, "OB", 35), f.s7_pi_ack(pdu + 5)),
    ]:
        recs += s7.exchange(t, req, resp)
        t += 10_000_000
    recs += s7.close(t)
    recs.sort(key=lambda r: r[0])
    return recs


def _tcp(cmac: str, cip: str, smac: str, sip: str, sport: int, dport: int) -> f.TcpSession:
    return f.TcpSession(f.Leg.of(cmac, smac, cip, sip), f.Leg.of(smac, cmac, sip, cip), sport, dport)


def write_ring(ring: Path, recs: list[tuple[int, bytes]], files: int, prefix: str = "pw-1") -> list[Path]:
    """Split records over `files` ring files named like dumpcap's."""
    ring.mkdir(parents=True, exist_ok=True, mode=0o700)
    per = -(-len(recs) // files)
    out = []
    for k in range(files):
        p = ring / f"{prefix}_{k + 1:05d}_20260302060000.pcapng"
        with PcapngWriter(p) as w:
            for ts, fr in recs[k * per:(k + 1) * per]:
                w.write(ts, fr)
        out.append(p)
    return out


def records(paths: list[Path]) -> list[tuple[int, int, bytes]]:
    """(ts, frame, bytes) of every record of `paths`, in order."""
    out = []
    for p in paths:
        for b in read_batches([p]):
            for i in range(len(b)):
                o = int(b.offset[i])
                out.append((int(b.ts[i]), int(b.frame[i]), bytes(b.data[o:o + int(b.caplen[i])])))
    return out


def epb_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    out, o = [], 0
    while o + 8 <= len(data):
        t, n = struct.unpack_from("<II", data, o)
        if t == 6:
            out.append(o)
        o += n
    return out
