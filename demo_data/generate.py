"""Generate the demo plant captures: a food-processing plant's "Computing" (IT) and "Industrial"
(OT) VLANs seen from a SPAN port on the core switch, with the seed incident replayed on top.

    python demo_data/generate.py                     # the shipped files, into demo_data/
    python demo_data/generate.py --no-attack --learn-days 1 --out-dir /tmp/x

Output is byte-for-byte reproducible from --seed and the options: every random choice comes from a
random.Random seeded with the seed and the name of the actor that makes it, and the capture files
are written with deterministic gzip (core/synth/pcapwriter.py).

The plant, its traffic and the attack are the simulator in plantwatch.core.synth (demo.py describes
this plant); this file is only the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository's plantwatch importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plantwatch.core.synth.demo import Config, DemoPlant, generate

Plant = DemoPlant  # the name tests and scripts know
HERE = Path(__file__).resolve().parent
__all__ = ["Config", "Plant", "generate", "main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=Config.seed)
    ap.add_argument("--learn-days", type=int, default=Config.learn_days)
    ap.add_argument("--plcs", type=int, default=Config.plcs, help="S7 PLCs (default %(default)s)")
    ap.add_argument("--modbus-devices", type=int, default=Config.modbus_devices)
    ap.add_argument("--workstations", type=int, default=Config.workstations)
    ap.add_argument("--poll", type=float, default=Config.poll_s, help="SCADA poll period in seconds")
    ap.add_argument("--incident-hours", type=float, default=Config.incident_hours)
    ap.add_argument("--attack", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--learn", default=Config.learn_name, help="learning capture file name")
    ap.add_argument("--incident", default=Config.incident_name, help="incident capture file name")
    ap.add_argument("--ground-truth", default=Config.ground_truth_name)
    a = ap.parse_args(argv)
    if a.plcs < 2 or a.modbus_devices < 2:
        ap.error("the plant needs at least 2 S7 PLCs and 2 Modbus devices")
    if a.plcs + a.modbus_devices > 230 or a.workstations > 230:
        ap.error("each VLAN is a /24: at most 230 OT devices and 230 workstations")
    cfg = Config(seed=a.seed, learn_days=max(1, a.learn_days), plcs=a.plcs, modbus_devices=a.modbus_devices,
                 workstations=max(1, a.workstations), attack=a.attack, poll_s=a.poll, out_dir=a.out_dir,
                 learn_name=a.learn, incident_name=a.incident, ground_truth_name=a.ground_truth,
                 incident_hours=a.incident_hours)
    print(json.dumps(generate(cfg), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
