"""Hostile DNS (issue 17.3): peak memory of `plantwatch analyze` on DNS responses that each carry
64 answers under a 253-character question name, every packet a new name and new addresses.

    .venv/bin/python bench/hostile_dns.py                    # 200,000 responses
    .venv/bin/python bench/hostile_dns.py --packets 50000 --name-len 20

The capture is generated with the project's frame builders (core/synth/frames.py) and cached in
bench/.cache. The CLI runs as a child; its peak RSS comes from wait4 (its own, no other process),
with its wall time, the DNS answers the decoder left out (the per-packet and per-batch caps,
reported as a warning) and the exit status. It is a report, like bench/run.py: a peak above
`--budget-mb` prints MISSED and still exits 0; exit 1 means the CLI failed.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `core` and `bench` importable
    sys.path.insert(0, str(ROOT))

from bench.run import plantwatch_cmd, run_child  # noqa: E402

CACHE_DIR = ROOT / "bench" / ".cache"
VERSION = 1
T0 = 1_772_431_200 * 1_000_000_000
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:35"
CLIENT_IP, SERVER_IP = "10.10.10.5", "10.10.10.53"


def hostile_name(rng: random.Random, length: int) -> str:
    """A name of exactly `length` characters (<= 253) in labels of up to 63, fresh each call."""
    labels, left = [], length
    while left > 0:
        n = min(63, left)
        if left - n == 1:  # a label cannot be empty: leave two characters for the last one
            n -= 1
        labels.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n)))
        left -= n + 1  # the dot
    return ".".join(labels)[:length]


def records(packets: int, answers: int, name_len: int, seed: int = 17):
    """(ts, frame) of `packets` DNS responses of `answers` A records each."""
    from plantwatch.core.synth import frames as f

    rng = random.Random(seed)
    for i in range(packets):
        name = hostile_name(rng, name_len)
        base = rng.randrange(1 << 24)
        addrs = [f"10.{(base >> 16) & 255}.{(base >> 8) & 255}.{(base + k) & 255}" for k in range(answers)]
        payload = f.dns_response(i & 0xFFFF, name, addrs)
        yield T0 + i * 50_000, f.udp_frame(SERVER_MAC, CLIENT_MAC, SERVER_IP, CLIENT_IP, 53,
                                           40000 + i % 20000, payload)


def ensure(packets: int, answers: int, name_len: int, regenerate: bool = False) -> Path:
    from plantwatch.core.synth.pcapwriter import write_pcapng

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = CACHE_DIR / f"hostile-dns-v{VERSION}-{packets}x{answers}x{name_len}.pcapng"
    if regenerate or not out.exists():
        tmp = out.with_suffix(".tmp")
        write_pcapng(tmp, records(packets, answers, name_len))
        tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--answers", type=int, default=64)
    ap.add_argument("--name-len", type=int, default=253)
    ap.add_argument("--budget-mb", type=int, default=1000, help="peak RSS budget (MB, 10^6 bytes)")
    ap.add_argument("--regenerate", action="store_true")
    a = ap.parse_args(argv)
    cli = plantwatch_cmd()
    if cli is None:
        print("hostile_dns: no plantwatch CLI found", file=sys.stderr)
        return 1
    cap = ensure(a.packets, a.answers, a.name_len, a.regenerate)
    with tempfile.TemporaryDirectory(prefix="pw-hostile-dns-") as tmp:
        r = run_child([*cli, "analyze", str(cap), "--store", f"{tmp}/s.sqlite", "--json"],
                      one_core=False, stdout=subprocess.DEVNULL)
    notes = [ln for ln in r["stderr_tail"].splitlines() if "DNS" in ln]
    mb = r["peak_rss_bytes"] / 1e6
    verdict = "ok" if mb < a.budget_mb else "MISSED"
    print(f"hostile DNS: {a.packets:,} responses x {a.answers} answers, names of {a.name_len} "
          f"characters ({cap.stat().st_size / 1e6:.0f} MB)")
    print(f"  plantwatch analyze: exit {r['returncode']}, {r['seconds']:.1f} s wall, "
          f"{r['cpu_seconds']:.1f} s CPU, peak RSS {mb:,.0f} MB (budget {a.budget_mb:,} MB: {verdict})")
    for n in notes:
        print(f"  {n}")
    if r["returncode"] != 0:
        print(r["stderr_tail"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
