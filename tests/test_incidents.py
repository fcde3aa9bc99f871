"""Incidents: grouping by device chains and time, the raising thresholds, phases in time order,
titles and narratives; and the device threat score over time."""

from __future__ import annotations

from plantwatch.core.detection import incidents, scoring
from plantwatch.core.detection.models import load_config
from plantwatch.core.detection.records import Breach

NS = 1_000_000_000
MIN = 60 * NS
HOUR = 60 * MIN
T = 1_772_409_600 * NS
CFG = load_config()


def br(bid: int, model: str, phase: str, device: str, targets: list[str], t: int, score: float,
       dur: int = MIN) -> Breach:
    return Breach(breach_id=bid, model=model, category="", severity="high", phase=phase, device=device,
                  devices=[device, *targets], first_ts=t, last_ts=t + dur, score=score,
                  importance=1.0, attack_ids=["T0846"], explanation=f"{model} by {device}.",
                  sessions=[], refs=[], details={})


def story() -> list[Breach]:
    a = "10.10.10.157"
    return [
        br(1, "device.new", "entry", a, ["10.20.20.10"], T, 0.9, 3 * HOUR),
        br(2, "rdp.admin", "privilege", a, ["10.20.20.10"], T + 6 * MIN, 0.55),
        br(3, "net.failed_internal", "discovery", a, ["10.20.20.21", "10.20.20.22"], T + 52 * MIN, 0.7),
        br(4, "tls.no_sni", "command and control", a, ["203.0.113.45"], T + 75 * MIN, 0.9),
        br(5, "ics.new_action", "impact", a, ["10.20.20.21"], T + 150 * MIN, 1.0),
    ]


def test_one_incident_with_phases_in_time_order() -> None:
    bs = story()
    out = incidents.build(bs, CFG, {"10.10.10.157"}, {"10.10.10.157": "DESKTOP-X"})
    assert len(out) == 1
    inc = out[0]
    assert [p.phase for p in inc.phases] == ["entry", "privilege", "discovery", "command and control", "impact"]
    assert inc.device == "10.10.10.157" and inc.breaches == 5
    assert inc.title.startswith("Network reconnaissance") and inc.title.endswith("by new device 10.10.10.157")
    assert "DESKTOP-X" in inc.narrative and "Impact (" in inc.narrative
    assert [t.breach_id for t in inc.timeline] == [1, 2, 3, 4, 5]
    assert all(b.incident_id == inc.incident_id for b in bs)
    assert inc.attack_ids == ["T0846"]


def test_far_apart_or_unrelated_breaches_stay_apart() -> None:
    bs = [br(1, "ics.reprogram", "impact", "10.0.0.1", ["10.0.0.9"], T, 0.9),
          br(2, "ics.reprogram", "impact", "10.0.0.1", ["10.0.0.9"], T + 10 * HOUR, 0.9),
          br(3, "ics.reprogram", "impact", "10.0.0.2", ["10.0.0.8"], T, 0.9)]
    out = incidents.build(bs, CFG)
    assert len(out) == 3


def test_a_target_that_acts_after_being_touched_joins_the_chain() -> None:
    pivot = [br(1, "rdp.admin", "privilege", "10.10.10.157", ["10.20.20.10"], T, 0.6),
             br(2, "ics.new_action", "impact", "10.20.20.10", ["10.20.20.21"], T + 30 * MIN, 0.9)]
    assert len(incidents.build(pivot, CFG)) == 1
    before = [br(1, "ics.connectivity", "lateral movement", "10.20.20.50", ["10.20.20.23"], T, 0.6),
              br(2, "net.failed_internal", "discovery", "10.10.10.157", ["10.20.20.50"],
                 T + 30 * MIN, 0.7)]
    assert len(incidents.build(before, CFG)) == 2  # the scanned device acted before the scan


def test_low_scores_raise_no_incident() -> None:
    low = [br(1, "ics.connectivity", "lateral movement", "10.20.20.50", ["10.20.20.23"], T, 0.27),
           br(2, "ics.connectivity", "lateral movement", "10.20.20.50", ["10.20.20.23"], T + MIN, 0.27)]
    assert incidents.build(low, CFG) == []
    assert all(b.incident_id is None for b in low)
    many = [br(i, m, "discovery", "10.0.0.5", [], T + i * MIN, 0.45) for i, m in
            enumerate(["A", "B", "C"], start=1)]
    assert len(incidents.build(many, CFG)) == 1  # three models, combined score over the bar


def test_threat_score_prefers_the_actor_and_fades() -> None:
    ev = []
    for b in story():
        ev.append((b.device, b.first_ts, b.last_ts, b.score, True))
        ev += [(d, b.first_ts, b.last_ts, b.score * 0.35, False) for d in b.devices[1:]]
    series = scoring.threat_over_time(ev, 6.0)
    peak = {d: max(s for s, _ in v.values()) for d, v in series.items()}
    assert max(peak, key=peak.get) == "10.10.10.157"
    assert peak["10.10.10.157"] > 0.99 and peak["10.20.20.21"] <= 0.35 + 1e-9
    a = series["10.10.10.157"]
    hours = sorted(a)
    assert a[hours[-1]][0] < a[hours[0]][0]  # it fades after the last breach


def test_poisson_importance() -> None:
    assert scoring.poisson_importance(0, 1.0) == 0.0
    assert scoring.poisson_importance(1, 1.0) < 0.3            # one event at the expected rate
    assert 6.7 < scoring.poisson_importance(3, 0.01) < 6.9     # p ~ 0.01**3 / 6 = 1.7e-7
    assert scoring.poisson_importance(500, 0.001) == scoring.MAX_IMPORTANCE
    lo = scoring.breach_score(1.0, "medium", CFG["scoring"]["severity_weight"], 4.0)
    hi = scoring.breach_score(10.0, "medium", CFG["scoring"]["severity_weight"], 4.0)
    assert 0 < lo < hi <= 0.7
