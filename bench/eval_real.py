"""The real captures of the detection suite (bench/eval.py): the labelled attack captures (learn on
the attack-free prefix the labels give, detect on the rest) and the single-operation captures
(cold start: every operation that stops, starts, restarts or reprograms a device must raise a
breach).

Labels are `frame;label` lines (1 = malicious). A labelled step is one malicious conversation
(unordered address pair); a breach detects it when both addresses are among the breach's devices
and it overlaps the malicious frames in time. Its attackers are the addresses that opened
malicious TCP connections: the sender of the connection's SYN, or, for a connection already open
when the capture began (no SYN anywhere in the file), the side that sent the connection's first
payload (the one making requests). Each attacker's rank is kept, and the attack's rank is the best.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARED = Path("/work/shared/pcaps")
LABELLED = SHARED / "labelled"
MORE = SHARED / "more"

# single-operation captures that must each raise a breach at cold start, with what they do
MUST_BREACH: dict[str, str] = {
    "EthernetIP_cip_stop_plc.pcap": "CIP stop",
    "EthernetIP_cip_start_plc.pcap": "CIP start",
    "openics_EIP-FirmwareChange.pcap": "CIP firmware change",
    "openics_EIP-SoftwareDownload.pcap": "CIP software download",
    "IEC61850_MMS_Specific_Commands_mms-stopRequest.pcap": "MMS stop",
    "IEC61850_MMS_Specific_Commands_mms-startRequest.pcap": "MMS start",
    "IEC61850_MMS_Specific_Commands_mms-killRequest.pcap": "MMS kill",
    "IEC61850_MMS_Specific_Commands_mms-initiateDownloadSequence.pcap": "MMS initiateDownloadSequence",
    "dnp3_warm_restart_and_response.pcap": "DNP3 warm restart",
    "profinet_PROFINET-RT-DCP_ChangeIPUsingDCP.pcap": "PROFINET DCP set (IP change)",
}


@dataclass(frozen=True)
class Frame:
    n: int             # frame number, from 1
    ts: int            # ns
    src: str
    dst: str
    syn: bool          # a TCP SYN without ACK
    sport: int = 0     # TCP ports (0 otherwise)
    dport: int = 0
    payload: int = 0   # TCP payload bytes


def read_pcap(path: Path) -> tuple[bytes, list[tuple[int, bytes, bytes]]]:
    """A classic pcap's global header and its records (ts ns, record header, data)."""
    raw = path.read_bytes()
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    out = []
    o = 24
    while o + 16 <= len(raw):
        sec, frac, incl, _ = struct.unpack(end + "IIII", raw[o:o + 16])
        out.append((sec * 1_000_000_000 + (frac if nano else frac * 1000), raw[o:o + 16], raw[o + 16:o + 16 + incl]))
        o += 16 + incl
    return raw[:24], out


def _frame(n: int, ts: int, data: bytes) -> Frame:
    off = 14
    etype = data[12:14]
    if etype == b"\x81\x00":
        off, etype = 18, data[16:18]
    if etype != b"\x08\x00" or len(data) < off + 20:
        return Frame(n, ts, "", "", False)
    ip = data[off:]
    src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
    if ip[9] != 6:
        return Frame(n, ts, src, dst, False)
    ihl = (ip[0] & 0x0F) * 4
    t = ip[ihl:]
    if len(t) < 14:
        return Frame(n, ts, src, dst, False)
    sport, dport = struct.unpack(">HH", t[:4])
    payload = max(0, struct.unpack(">H", ip[2:4])[0] - ihl - (t[12] >> 4) * 4)
    return Frame(n, ts, src, dst, (t[13] & 0x12) == 0x02, sport, dport, payload)


def initiators(frames: list[Frame], bad: set[int]) -> dict[str, str]:
    """Who opened each malicious TCP connection: {address: "syn" | "first payload"}. A connection
    whose SYN is not in the capture was open before it began; its opener is the side that sent
    the first payload (the requester), which is what a SYN-only rule cannot see."""
    conns: dict[tuple[str, int, str, int], list[Frame]] = {}
    for fr in frames:
        if fr.sport and fr.dport:
            a, b = (fr.src, fr.sport), (fr.dst, fr.dport)
            conns.setdefault((*min(a, b), *max(a, b)), []).append(fr)
    out: dict[str, str] = {}
    for frs in conns.values():
        if not any(fr.n in bad for fr in frs):
            continue
        syn = next((fr for fr in frs if fr.syn), None)
        if syn is not None:
            out[syn.src] = "syn"
            continue
        first = next((fr for fr in frs if fr.payload), None)
        if first is not None:
            out.setdefault(first.src, "first payload")
    return out


def labels(csv: Path) -> set[int]:
    bad = set()
    for line in csv.read_text().splitlines():
        parts = line.strip().split(";")
        if len(parts) == 2 and parts[1].strip() == "1":
            bad.add(int(parts[0]))
    return bad


def split_labelled(pcap: Path, csv: Path, out_dir: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Write the attack-free prefix and the rest as two pcaps; return them and the truth: steps
    (malicious conversations with their spans), attackers, the malicious span."""
    head, recs = read_pcap(pcap)
    bad = labels(csv)
    first = min(bad)
    out_dir.mkdir(parents=True, exist_ok=True)
    learn, rest = out_dir / f"{pcap.stem}.learn.pcap", out_dir / f"{pcap.stem}.detect.pcap"
    learn.write_bytes(head + b"".join(h + d for _, h, d in recs[:first - 1]))
    rest.write_bytes(head + b"".join(h + d for _, h, d in recs[first - 1:]))
    frames = [_frame(i + 1, ts, d) for i, (ts, _, d) in enumerate(recs)]
    steps: dict[tuple[str, str], list[Frame]] = {}
    for fr in frames:
        if fr.n in bad and fr.src and fr.dst and not fr.dst.endswith(".255"):
            steps.setdefault(tuple(sorted((fr.src, fr.dst))), []).append(fr)
    opened = initiators(frames, bad)
    truth = {"learn_frames": first - 1, "detect_frames": len(recs) - first + 1,
             "steps": [{"id": f"{a}<->{b}", "pair": [a, b], "frames": len(fs),
                        "start_ns": min(f.ts for f in fs), "end_ns": max(f.ts for f in fs)}
                       for (a, b), fs in sorted(steps.items())],
             "attackers": sorted(opened), "opened_by": dict(sorted(opened.items())),
             "span": [min(f.ts for f in frames if f.n in bad), max(f.ts for f in frames if f.n in bad)]}
    return learn, rest, truth


def evaluate_labelled(breaches: list[dict[str, Any]], ranking: list[str], n_incidents: int,
                      truth: dict[str, Any], tolerance_ns: int = 60_000_000_000) -> dict[str, Any]:
    """Recall by malicious conversation, precision, the best attacker's rank."""
    lo, hi = truth["span"][0] - tolerance_ns, truth["span"][1] + tolerance_ns
    bad_pairs = {tuple(s["pair"]) for s in truth["steps"]}
    steps = []
    for s in truth["steps"]:
        a, b = s["pair"]
        hits = sorted({x["model"] for x in breaches if a in x["devices"] and b in x["devices"]
                       and x["first_ts"] <= s["end_ns"] + tolerance_ns and x["last_ts"] >= s["start_ns"] - tolerance_ns})
        steps.append({"id": s["id"], "frames": s["frames"], "detected_by": hits,
                      "status": "detected" if hits else "missed"})

    def attack_breach(x: dict[str, Any]) -> bool:
        devs = x["devices"]
        return x["first_ts"] <= hi and x["last_ts"] >= lo and any(
            a in devs and b in devs for a, b in bad_pairs)

    tp = sum(attack_breach(x) for x in breaches)
    ranks = {a: ranking.index(a) + 1 for a in truth["attackers"] if a in ranking}
    return {"steps": steps, "steps_detected": sum(s["status"] == "detected" for s in steps),
            "steps_total": len(steps),
            "recall": round(sum(s["status"] == "detected" for s in steps) / len(steps), 4) if steps else None,
            "breaches": len(breaches), "true_positives": tp,
            "precision": round(tp / len(breaches), 4) if breaches else None,
            "attackers": truth["attackers"], "opened_by": truth.get("opened_by", {}), "attacker_ranks": ranks,
            "attacker_rank": min(ranks.values()) if ranks else None,
            "incidents": n_incidents, "learn_frames": truth["learn_frames"]}


def attack_peak(breaches: list[dict[str, Any]], truth: dict[str, Any]) -> float:
    """The highest score of a breach on a malicious conversation."""
    pairs = [tuple(s["pair"]) for s in truth["steps"]]
    return max((x["score"] for x in breaches if any(a in x["devices"] and b in x["devices"] for a, b in pairs)),
               default=0.0)


__all__ = ["attack_peak", "LABELLED", "MORE", "MUST_BREACH", "split_labelled", "evaluate_labelled", "read_pcap"]
