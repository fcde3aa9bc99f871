"""`make eval`: the detection regression suite. Prints one table and writes the same as JSON.

Rows:
- the scenario plants (core/synth/scenarios.py): every attack variant on each seed of a set,
  learning one attack-free day then detecting on the next hours; recall by step, precision,
  the attacker's rank by threat score, incidents;
- the attack-free twins of the same plants: false breaches per device-day and incidents;
- the demo plant (demo_data/): learn.pcapng.gz then incident.pcapng.gz against its ground truth;
- the labelled real captures (bench/eval_real.py): learn on the attack-free prefix, detect on
  the rest;
- the single-operation captures: cold start, each stop/start/restart/download must raise a breach.

Seeds: thresholds are chosen on TUNING_SEEDS only; the table reports REPORT_SEEDS unless
`--seeds tuning` (or explicit seeds) is given.

    python bench/eval.py [--seeds report|tuning|N,N] [--only loud,beacon] [--skip-demo] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(ROOT))

from bench import eval_real  # noqa: E402
from plantwatch.core.inventory.zones import Zones  # noqa: E402
from plantwatch.core.pipeline.ingest import Ingest  # noqa: E402
from plantwatch.core.store.database import Store  # noqa: E402
from plantwatch.core.synth import scenarios  # noqa: E402
from plantwatch.core.views import eval as evaluation  # noqa: E402

DEMO = ROOT / "demo_data"
CACHE = ROOT / "bench" / ".cache"


def analyze(store_path: Path, learn: list[Path], detect: list[Path], zones: Zones) -> None:
    with Store(store_path) as st:
        if learn:
            Ingest(st, zones, mode="learn").run(learn)
        Ingest(st, zones).run(detect)


def stored(store_path: Path) -> tuple[list[dict[str, Any]], list[str], int]:
    """The store's breaches, devices ranked by peak threat score, incident count."""
    with Store(store_path) as st:
        rows = st.execute("SELECT model, device, devices, first_ts, last_ts, score, incident_id FROM breaches"
                          " ORDER BY first_ts").fetchall()
        ranking = [d for d, _ in st.execute("SELECT device, MAX(score) FROM device_scores GROUP BY device"
                                            " ORDER BY MAX(score) DESC, device").fetchall()]
        n_inc = st.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
    breaches = [{"model": m, "device": d, "devices": json.loads(ds or "[]"), "first_ts": a, "last_ts": z,
                 "score": s, "incident_id": i} for m, d, ds, a, z, s, i in rows]
    return breaches, ranking, n_inc


def _protocols(seed: int) -> list[str]:
    """The field protocols of the plant of `seed` (controllers', field devices')."""
    return list(scenarios.draw_shape(seed).protocols)


def scenario(name: str, seed: int, work: Path) -> dict[str, Any]:
    files = scenarios.generate(name, seed, work / f"{name}-{seed}")
    store = work / f"{name}-{seed}.sqlite"
    analyze(store, [files.learn], [files.detect], Zones.load(files.zones))
    assert files.truth is not None
    with Store(store) as st:
        r = evaluation.evaluate(st, evaluation.load_truth(files.truth))
    inc = r["incident"] or {}
    return {"kind": "scenario", "name": name, "seed": seed, "protocols": _protocols(seed),
            "recall": r["recall"], "precision": r["precision"],
            "steps": {s["id"]: {"status": s["status"], "detected_by": s["detected_by"], "missed": s["missed"]}
                      for s in r["steps"]},
            "steps_detected": r["steps_detected"], "steps_total": r["steps_total"],
            "attacker_rank": r["attacker_rank"], "incidents": r["incidents"],
            "one_incident_holds_attack": bool(inc.get("holds_all_attack_breaches")),
            "breaches": r["breaches"], "true_positives": r["true_positives"]}


def twin(seed: int, work: Path) -> dict[str, Any]:
    files = scenarios.generate(None, seed, work / f"twin-{seed}")
    store = work / f"twin-{seed}.sqlite"
    analyze(store, [files.learn], [files.detect], Zones.load(files.zones))
    breaches, _, n_inc = stored(store)
    device_days = files.devices * files.detect_hours / 24
    return {"kind": "twin", "name": "twin", "seed": seed, "protocols": _protocols(seed),
            "breaches": len(breaches), "incidents": n_inc,
            "device_days": round(device_days, 2),
            "false_per_device_day": round(len(breaches) / device_days, 4),
            "models": sorted({b["model"] for b in breaches})}


def demo(work: Path) -> dict[str, Any]:
    store = work / "demo.sqlite"
    analyze(store, [DEMO / "learn.pcapng.gz"], [DEMO / "incident.pcapng.gz"], Zones.load(DEMO / "zones.toml"))
    with Store(store) as st:
        r = evaluation.evaluate(st, evaluation.load_truth(DEMO / "ground_truth.json"))
    return {"kind": "demo", "name": "demo", "seed": None, "protocols": ["s7", "modbus"],
            "recall": r["recall"], "precision": r["precision"],
            "steps_detected": r["steps_detected"], "steps_total": r["steps_total"],
            "steps": {s["id"]: {"status": s["status"], "detected_by": s["detected_by"], "missed": s["missed"]}
                      for s in r["steps"]},
            "attacker_rank": r["attacker_rank"], "incidents": r["incidents"],
            "one_incident_holds_attack": bool((r["incident"] or {}).get("holds_all_attack_breaches")),
            "breaches": r["breaches"], "true_positives": r["true_positives"]}


def labelled(pcap: Path, work: Path) -> dict[str, Any]:
    csv = pcap.with_name(pcap.stem + "_labeled.csv")
    learn, rest, truth = eval_real.split_labelled(pcap, csv, work / "labelled")
    store = work / f"{pcap.stem}.sqlite"
    analyze(store, [learn], [rest], Zones.default())
    breaches, ranking, n_inc = stored(store)
    r = eval_real.evaluate_labelled(breaches, ranking, n_inc, truth)
    # the same capture at cold start: learning the prefix must not lower the attack's scores
    cold = work / f"{pcap.stem}.cold.sqlite"
    analyze(cold, [], [pcap], Zones.default())
    cold_breaches, _, _ = stored(cold)
    peak = eval_real.attack_peak(breaches, truth)
    cold_peak = eval_real.attack_peak(cold_breaches, truth)
    return {"kind": "labelled", "name": pcap.stem.replace("lemay_", "").replace("_modbus_6RTU", ""), "seed": None, **r,
            "steps": {s["id"]: s for s in r["steps"]}, "attack_peak_score": peak,
            "cold_start_peak_score": cold_peak, "learning_not_worse": peak >= cold_peak}


def single_ops(work: Path) -> list[dict[str, Any]]:
    out = []
    for name, what in eval_real.MUST_BREACH.items():
        path = eval_real.MORE / name
        store = work / f"more-{path.stem}.sqlite"
        analyze(store, [], [path], Zones.default())
        breaches, _, n_inc = stored(store)
        out.append({"kind": "single_op", "name": what, "file": name, "breaches": len(breaches),
                    "models": sorted({b["model"] for b in breaches}), "incidents": n_inc,
                    "ok": bool(breaches)})
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'scenario':<34} {'seed':>4} {'protocols':<13} {'steps':>5} {'recall':>6} {'prec':>5} {'rank':>4} {'inc':>3} {'fp/dev-day':>10}  missed / notes"
    lines = [head, "-" * len(head)]
    for r in rows:
        seed = "" if r.get("seed") is None else str(r["seed"])
        seed = f"{seed:>4} {'+'.join(r.get('protocols') or []):<13}"
        if r["kind"] == "twin":
            lines.append(f"{'twin (attack-free)':<34} {seed} {'':>5} {'':>6} {'':>5} {'':>4} {r['incidents']:>3} "
                         f"{r['false_per_device_day']:>10.4f}  {r['breaches']} breach(es) in {r['device_days']} "
                         f"device-days{': ' + ', '.join(r['models']) if r['models'] else ''}")
        elif r["kind"] == "single_op":
            lines.append(f"{('op: ' + r['name'])[:34]:<34} {seed} {'':>5} {'':>6} {'':>5} {'':>4} {r['incidents']:>3} {'':>10}  "
                         f"{'ok' if r['ok'] else 'NO BREACH'} {', '.join(r['models'])}")
        else:
            missed = []
            for sid, s in r["steps"].items():
                if s["status"] != "detected":
                    missed.append(f"{sid}:{','.join(s.get('missed') or []) or 'all'}")
            steps = f"{r['steps_detected']}/{r['steps_total']}"
            rank = "-" if r.get("attacker_rank") is None else str(r["attacker_rank"])
            note = "; ".join(missed) or "all detected"
            if r["kind"] in ("scenario", "demo") and not r.get("one_incident_holds_attack"):
                note += "; attack split over incidents"
            if r["kind"] == "labelled":
                note += "; attackers " + ", ".join(
                    f"{a} rank {r['attacker_ranks'].get(a, '-')} ({r['opened_by'].get(a, '?')})" for a in r["attackers"])
                note += (f"; peak {r['attack_peak_score']:.2f} learned vs {r['cold_start_peak_score']:.2f} cold"
                         + ("" if r["learning_not_worse"] else " (LEARNING LOWERED IT)"))
            lines.append(f"{(r['kind'][0] + ':' + r['name'])[:34]:<34} {seed} {steps:>5} {_pct(r['recall']):>6} "
                         f"{_pct(r['precision']):>5} {rank:>4} {r['incidents']:>3} {'':>10}  {note}")
    return "\n".join(lines)


def run(names: list[str], seeds: list[int], with_demo: bool = True, with_real: bool = True,
        work: Path | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="plantwatch-eval-") as tmp:
        w = work or Path(tmp)
        for seed in seeds:
            rows += [scenario(n, seed, w) for n in names]
            rows.append(twin(seed, w))
        if with_demo:
            rows.append(demo(w))
        if with_real:
            rows += [labelled(p, w) for p in sorted(eval_real.LABELLED.glob("*.pcap"))]
            rows += single_ops(w)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="report", help="report, tuning, or comma-separated seeds")
    ap.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--out", type=Path, default=CACHE / "eval.json")
    a = ap.parse_args(argv)
    seeds = {"report": list(scenarios.REPORT_SEEDS), "tuning": list(scenarios.TUNING_SEEDS)}.get(
        a.seeds) or [int(s) for s in a.seeds.split(",")]
    names = [n for n in a.only.split(",") if n] or list(scenarios.NAMES)
    t0 = time.perf_counter()
    rows = run(names, seeds, with_demo=not a.skip_demo, with_real=not a.skip_real)
    print(table(rows))
    print(f"seeds: {seeds} ({a.seeds}); tuning seeds {list(scenarios.TUNING_SEEDS)}, report seeds "
          f"{list(scenarios.REPORT_SEEDS)}; {time.perf_counter() - t0:.0f} s")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"seeds": seeds, "rows": rows}, indent=2) + "\n")
    print(f"written {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
