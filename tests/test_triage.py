"""The analyst's loop on the bundled demo (real captures, ground truth in demo_data/ground_truth.json):
accept as normal, maintenance windows, allow rules loaded after analysis, states, and withdrawal
giving back exactly what detection wrote."""

from __future__ import annotations

import ipaddress
import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from plantwatch.core.detection.models import load_config
from plantwatch.core.detection.records import Breach
from plantwatch.core.detection.scoring import combine
from plantwatch.core.detection.triage.facts import facts_of
from plantwatch.core.detection.triage.match import acceptance_matches, rule_matches
from plantwatch.core.detection.triage.records import Acceptance, TriageInputs
from plantwatch.core.detection.triage.rescore import rescore
from plantwatch.core.detection.triage.rules import RulesError, parse_rules
from plantwatch.core.store.database import Store
from plantwatch.core.store.triage_apply import breach_facts, load_breaches, load_detected_incidents
from plantwatch.core.store.writers import StoreSink
from plantwatch.core.views import report
from plantwatch.tui.cli import main
from tests.tui_support import DEMO, needs_demo

SCHEMA = json.loads((Path(__file__).parent.parent / "core" / "data" / "analyze.schema.json").read_text())
TRUTH = json.loads((DEMO / "ground_truth.json").read_text())


def step(sid: str) -> dict:
    return next(s for s in TRUTH["steps"] if s["id"] == sid)


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture()
def store(tmp_path: Path, demo_store: Path) -> Path:
    path = tmp_path / "demo.sqlite"
    shutil.copy(demo_store, path)
    return path


def cli(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def built(path: Path) -> dict:
    with Store(path, readonly=True) as st:
        data = report.build(st)
    jsonschema.validate(data, SCHEMA)
    return data


def attack_incident(data: dict) -> dict:
    attacker = TRUTH["attacker"]["ip"]
    incs = [i for i in data["incidents"] if i["device"] == attacker]
    assert len(incs) == 1, [i["title"] for i in data["incidents"]]
    return incs[0]


def table_rows(path: Path) -> tuple[list, list, list]:
    with Store(path, readonly=True) as st:
        return (st.execute("SELECT * FROM breaches ORDER BY breach_id").fetchall(),
                st.execute("SELECT * FROM incidents ORDER BY incident_id").fetchall(),
                st.execute("SELECT * FROM device_scores ORDER BY device, ts").fetchall())


@needs_demo
def test_accepting_the_attackers_admin_rdp_removes_it_and_rescores_the_incident(store: Path) -> None:
    s = step("admin_rdp")
    before = built(store)
    rdp = [b for b in before["breaches"] if b["model_id"] == "rdp.admin" and b["device"] == s["source"]
           and b["devices"][1:] == s["targets"]]
    assert len(rdp) == 1
    inc0 = attack_incident(before)
    assert rdp[0]["incident_id"] == inc0["incident_id"]

    code, out, err = cli("accept", str(rdp[0]["breach_id"]), "--why", "vendor remote support", "--store", str(store))
    assert code == 0, err
    assert f"rdp.admin by {s['source']} to {s['targets'][0]}" in out and "user=Administrator" in out
    assert "1 breach(es) accepted" in err and "1 incident(s) re-scored" in err

    after = built(store)
    assert rdp[0]["breach_id"] not in {b["breach_id"] for b in after["breaches"]}
    gone = [b for b in after["triage"]["suppressed"] if b["breach_id"] == rdp[0]["breach_id"]]
    assert gone[0]["triage"] == {"disposition": "accepted", "ref": 1, "by": "vendor remote support",
                                 "detected_score": rdp[0]["score"]}
    assert gone[0]["score"] == 0.0 and gone[0]["incident_id"] is None
    inc = attack_incident(after)
    assert inc["incident_id"] == inc0["incident_id"] and inc["breaches"] == inc0["breaches"] - 1
    assert rdp[0]["breach_id"] not in {t["breach_id"] for t in inc["timeline"]}
    held = [b for b in after["breaches"] if b["incident_id"] == inc["incident_id"]]
    assert len(held) == inc["breaches"]
    assert inc["score"] == round(combine(b["score"] for b in held), 4)
    # the admin RDP was the only privilege step: the story no longer has that phase
    assert "privilege" in [p["phase"] for p in inc0["phases"]]
    assert "privilege" not in [p["phase"] for p in inc["phases"]]
    assert inc["triage_note"].startswith("re-scored")
    assert after["triage"]["acceptances"][0]["keys"] == {"user": ["Administrator"]}

    # the same keys stop firing: a later detection writing the same breach finds it accepted
    with Store(store) as st:
        again = load_breaches(st)
        incs = load_detected_incidents(st, again)
        with st.transaction():
            StoreSink(st).write_detection(again, incs, [])
        row = st.execute("SELECT score, incident_id FROM breaches WHERE breach_id = ?", (rdp[0]["breach_id"],)).fetchone()
        assert row == (0.0, None)
        acc = Acceptance(1, 0, "rdp.admin", s["source"], tuple(s["targets"]), (("user", ("Administrator",)),), "", "", 0)
        b = next(x for x in again if x.breach_id == rdp[0]["breach_id"])
        # ...but another user, or another target, still fires
        assert acceptance_matches(acc, facts_of(b, [], [], {}))
        assert not acceptance_matches(acc, facts_of(replace(b, details={**b.details, "user": "root"}), [], [], {}))
        assert not acceptance_matches(acc, facts_of(replace(b, devices=[b.device, "10.20.20.12"]), [], [], {}))


@needs_demo
def test_a_maintenance_window_over_the_program_download_opens_no_incident(store: Path) -> None:
    s = step("ics_commands")
    plcs = sorted({op["target"] for op in s["facts"]["operations"] if op["class"] == "REPROGRAM"})
    before = built(store)
    inc0 = attack_incident(before)

    # another device's window over the same time labels nothing
    code, _, err = cli("window", "add", "--name", "ITADM01 work", "--from", iso(s["start_ns"]),
                       "--to", iso(s["end_ns"] + 10**9), "--devices", "10.10.10.5", "--targets", ",".join(plcs),
                       "--classes", "REPROGRAM", "--store", str(store))
    assert code == 0 and "0 in maintenance windows" in err, err

    code, out, err = cli("window", "add", "--name", "PLC program download", "--from", iso(s["start_ns"]),
                         "--to", iso(s["end_ns"] + 10**9), "--devices", s["source"], "--targets", ",".join(plcs),
                         "--classes", "REPROGRAM", "--store", str(store))
    assert code == 0, err
    after = built(store)
    labelled = [b for b in after["breaches"] if b.get("triage", {}).get("disposition") == "window"]
    assert labelled and {b["model_id"] for b in labelled} == {"ics.reprogram"}
    for b in labelled:
        assert b["triage"]["by"] == "PLC program download" and b["incident_id"] is None
        assert b["score"] <= 0.1 < b["triage"]["detected_score"]
        assert set(b["devices"][1:]) <= set(plcs)
    assert not any(b["breach_id"] in {t["breach_id"] for t in i["timeline"]}
                   for i in after["incidents"] for b in labelled)
    # the rest of the attack still forms one incident, the commands outside REPROGRAM in it
    inc = attack_incident(after)
    assert inc["breaches"] == inc0["breaches"] - len(labelled)
    held = {b["model_id"] for b in after["breaches"] if b["incident_id"] == inc["incident_id"]}
    assert {"ics.new_action", "ics.new_discover", "rdp.admin", "ics.it_to_ics"} <= held
    assert after["triage"]["counts"]["in_window"] == len(labelled)
    assert [w["name"] for w in after["triage"]["windows"]] == ["ITADM01 work", "PLC program download"]


RULES = """
# OT access from the office subnet is being commissioned this month
[[allow]]
name = "office to OT (commissioning)"
models = ["ics.*"]
src = ["10.10.10.*"]
dst = ["10.20.20.0/24"]

[[allow]]
name = "desktops going out"
models = ["net.external"]
src = ["DESKTOP-*"]
weekdays = ["mon", "tue", "wed", "thu", "fri"]
"""


@needs_demo
def test_a_wildcard_rule_loaded_after_analysis_suppresses_retroactively(store: Path, tmp_path: Path) -> None:
    before = built(store)
    office, ot = ipaddress.ip_network("10.10.10.0/24"), ipaddress.ip_network("10.20.20.0/24")
    expect_ot = {b["breach_id"] for b in before["breaches"] if b["model_id"].startswith("ics.")
                 and ipaddress.ip_address(b["device"]) in office
                 and b["devices"][1:] and all(ipaddress.ip_address(t) in ot for t in b["devices"][1:])}
    expect_ext = {b["breach_id"] for b in before["breaches"] if b["model_id"] == "net.external"
                  and b["device"] == TRUTH["attacker"]["ip"]}   # DESKTOP-4H7KQ2P, on a Wednesday
    assert len(expect_ot) >= 5 and len(expect_ext) == 1
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    code, _, err = cli("rules", "load", str(rules), "--store", str(store))
    assert code == 0, err
    n = len(expect_ot) + len(expect_ext)
    assert f"{n} stored breach(es) suppressed" in err
    assert f"rule office to OT (commissioning): {len(expect_ot)}" in err
    code, out, _ = cli("triage", "suppressed", "--json", "--store", str(store))
    listed = json.loads(out)
    assert {r["breach_id"] for r in listed} == expect_ot | expect_ext
    assert {r["label"] for r in listed if r["breach_id"] in expect_ext} == {"desktops going out"}
    after = built(store)
    assert after["triage"]["counts"]["suppressed"] == n
    assert not ({b["breach_id"] for b in after["breaches"]} & (expect_ot | expect_ext))
    assert after["triage"]["rules"]["path"] == str(rules)
    # the file is kept in the store
    code, out, _ = cli("rules", "show", "--store", str(store))
    assert 'name = "desktops going out"' in out
    # the same file given to analyze --rules on a fresh store gives the same count
    fresh = tmp_path / "fresh.sqlite"
    code, out, err = cli("analyze", str(DEMO / "incident.pcapng.gz"), "--learn", str(DEMO / "learn.pcapng.gz"),
                         "--zones", str(DEMO / "zones.toml"), "--store", str(fresh), "--rules", str(rules), "--json")
    assert code == 0, err
    assert json.loads(out)["triage"]["counts"]["suppressed"] == n


@needs_demo
def test_withdrawing_every_acceptance_rule_and_window_gives_back_the_original(store: Path, tmp_path: Path) -> None:
    original = table_rows(store)
    with Store(store, readonly=True) as st:
        breaches = load_breaches(st)
        detected = load_detected_incidents(st, breaches)
        facts = breach_facts(st, breaches, with_sessions=True)
    # the pure function: no inputs, exactly the detected breaches and incidents
    res = rescore(breaches, detected, facts, TriageInputs(), load_config(), set(), {})
    assert res.breaches == breaches and res.incidents == detected and not res.dispositions

    rdp = next(b for b in breaches if b.model == "rdp.admin")
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    s = step("ics_commands")
    assert cli("accept", str(rdp.breach_id), "--why", "x", "--store", str(store))[0] == 0
    assert cli("rules", "load", str(rules), "--store", str(store))[0] == 0
    assert cli("window", "add", "--name", "w", "--from", iso(s["start_ns"]), "--to", iso(s["end_ns"] + 10**9),
               "--devices", "10.10.10.0/24", "--store", str(store))[0] == 0
    assert cli("triage", "ack", str(rdp.breach_id), "--store", str(store))[0] == 0
    assert table_rows(store) != original
    assert cli("accepted", "--withdraw", "1", "--store", str(store))[0] == 0
    assert cli("rules", "withdraw", "--store", str(store))[0] == 0
    code, _, err = cli("window", "withdraw", "1", "--store", str(store))
    assert code == 0 and "0 breach(es) accepted, 0 suppressed by rules, 0 in maintenance windows" in err
    assert table_rows(store) == original
    code, out, _ = cli("accepted", "--all", "--store", str(store))
    assert "withdrawn" in out and "why: x" in out
    # withdrawing twice is an error, and changes nothing
    code, _, err = cli("accepted", "--withdraw", "1", "--store", str(store))
    assert code == 2 and "no acceptance 1 in force" in err


@needs_demo
def test_states_history_undo_and_mistakes(store: Path) -> None:
    data = built(store)
    bid = str(data["breaches"][0]["breach_id"])
    iid = str(data["incidents"][0]["incident_id"])
    assert cli("triage", "ack", bid, "--store", str(store))[0] == 0
    code, _, err = cli("triage", "false-positive", bid, "--store", str(store))
    assert code == 2 and err.count("\n") == 1
    assert cli("triage", "false-positive", bid, "--note", "bench test", "--store", str(store))[0] == 0
    code, out, _ = cli("triage", "undo", bid, "--store", str(store))
    assert code == 0 and out.strip().endswith("acknowledged (undo of false positive)")
    code, out, _ = cli("triage", "history", bid, "--store", str(store))
    assert [ln.split("  ")[2] for ln in out.splitlines()] == ["acknowledged", "false positive", "acknowledged"]
    assert cli("triage", "resolve", iid, "--incident", "--note", "contained", "--store", str(store))[0] == 0
    after = built(store)
    assert next(b for b in after["breaches"] if str(b["breach_id"]) == bid)["state"]["state"] == "acknowledged"
    inc = next(i for i in after["incidents"] if str(i["incident_id"]) == iid)
    assert inc["state"]["state"] == "resolved" and inc["state"]["note"] == "contained"
    code, out, _ = cli("triage", "list", "--state", "ack", "--store", str(store))
    assert code == 0 and [ln.split()[0] for ln in out.splitlines()] == [bid]
    code, out, _ = cli("triage", "list", "--incidents", "--store", str(store))
    assert code == 0 and f"{iid}  " in out and "resolved" in out
    assert cli("triage", "list", "--state", "bogus", "--store", str(store))[0] == 2
    rec = [r for r in report.jsonl_records(after) if r["type"] == "triage"]
    assert len(rec) == 1 and rec[0]["counts"] == {"accepted": 0, "suppressed": 0, "in_window": 0}
    code, _, err = cli("triage", "ack", "12345", "--store", str(store))
    assert code == 2 and "no breach 12345" in err
    code, _, err = cli("window", "add", "--name", "x", "--from", "yesterday", "--to", "2026-03-04T16:00",
                       "--devices", "10.10.10.5", "--store", str(store))
    assert code == 2 and "'yesterday' is not a time" in err


@pytest.mark.parametrize(("text", "problem"), [
    ("[[allow]\nname=1", "not valid TOML"),
    ('[[allow]]\nname = "a"\nsrcs = ["x"]', "rule 1 (a): unknown field(s) srcs"),
    ('[[allow]]\nname = "a"\nports = ["70000"]', "rule 1 (a).ports: '70000' is not a port range"),
    ('[[allow]]\nname = "a"\nweekdays = ["someday"]', "'someday' is not a weekday"),
    ('[[allow]]\nname = "a"\nhours = "6-14"', "is not a time like 06:00"),
    ('[[allow]]\nname = "a"', "allows everything"),
    ('[[allow]]\nmodels = ["ics.*"]', "rule 1: needs a name"),
    ('[[deny]]\nname = "a"', "unknown table(s) deny"),
])
def test_rules_file_mistakes_are_named(text: str, problem: str, tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=None) as e:
        parse_rules(text)
    assert problem in str(e.value)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    store = tmp_path / "s.sqlite"
    Store(store).close()
    code, _, err = cli("rules", "load", str(bad), "--store", str(store))
    assert code == 2 and err.startswith(f"plantwatch: {bad}: ") and err.count("\n") == 1
    with Store(store, readonly=True) as st:
        assert st.execute("SELECT COUNT(*) FROM rulesets").fetchone()[0] == 0


def test_rule_times_of_day_wrap_midnight_and_weekdays_use_packet_time() -> None:
    from plantwatch.core.detection.triage.records import BreachFacts

    rule = parse_rules('[[allow]]\nname = "night"\nhours = "22:00-06:00"\nweekdays = ["sat"]')[0]
    sat_2330 = int(datetime(2026, 3, 7, 23, 30, tzinfo=UTC).timestamp()) * 10**9
    f = BreachFacts(1, "net.external", "10.0.0.1", (), sat_2330, sat_2330 + 60 * 10**9)
    assert rule_matches(rule, f)
    assert not rule_matches(rule, replace(f, last_ts=sat_2330 + 8 * 3600 * 10**9))      # into Sunday 07:30
    noon = int(datetime(2026, 3, 7, 12, 0, tzinfo=UTC).timestamp()) * 10**9
    assert not rule_matches(rule, replace(f, first_ts=noon, last_ts=noon))


def test_the_readme_example_rules_file_loads() -> None:
    text = (Path(__file__).parent.parent / "README.md").read_text()
    part = text.split("### Tuning and triage", 1)[1]
    toml = part.split("```toml", 1)[1].split("```", 1)[0]
    rules = parse_rules("\n".join(line[2:] for line in toml.splitlines()))
    assert [r.name for r in rules] == ["historian polls the PLCs"]
    r = rules[0]
    assert r.ports == ((102, 102), (502, 502), (20000, 20010)) and r.hours == (360, 1080) and r.weekdays == (0, 1, 2, 3, 4)


@needs_demo
def test_the_siem_feed_skips_breaches_triage_accepted_or_suppressed(store: Path, tmp_path: Path) -> None:
    from plantwatch.core.pipeline.siem import Forwarder

    class Collect:   # stands in for the syslog sender (tests/test_siem.py uses a real rsyslogd)
        def __init__(self) -> None:
            self.sent: list[str] = []

        def flush(self) -> None:
            pass

        def send(self, msg: bytes | str) -> None:
            self.sent.append(msg if isinstance(msg, str) else msg.decode())

    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    assert cli("rules", "load", str(rules), "--store", str(store))[0] == 0
    with Store(store, readonly=True) as st:
        covered = {r for (r,) in st.execute("SELECT breach_id FROM breach_triage")}
        total = st.execute("SELECT COUNT(*) FROM breaches").fetchone()[0]
        fwd = Forwarder(Collect(), "json")
        nb, _ = fwd.forward(st)
    assert covered and nb == total - len(covered)
    sent = [json.loads(m[m.index("{"):]) for m in fwd.sender.sent]
    ids = {m.get("breach_id") or m.get("id") for m in sent}
    assert len(ids - {None}) >= nb and not ids & covered


def _breach(bid: int, actor: str, target: str, minute: int, model: str = "ics.new_action") -> Breach:
    t = 1_772_600_000 * 10**9 + minute * 60 * 10**9
    return Breach(breach_id=bid, model=model, category="ICS", severity="high", phase="impact",
                  attack_ids=["T0855"], device=actor, devices=[actor, target], first_ts=t, last_ts=t + 10**9,
                  score=0.9, importance=9.0, explanation=f"{actor} to {target}", sessions=[], refs=[],
                  details={"operations": ["Write Var"]})


def test_removing_a_bridging_breach_splits_an_incident_with_distinct_ids_and_withdrawal_restores_it() -> None:
    from plantwatch.core.detection import incidents as incidents_mod

    cfg = load_config()
    bs = [_breach(11, "10.0.0.1", "10.0.0.2", 0), _breach(12, "10.0.0.2", "10.0.0.3", 5),
          _breach(13, "10.0.0.3", "10.0.0.4", 10)]
    detected = incidents_mod.build(bs, cfg)
    assert len(detected) == 1 and {b.incident_id for b in bs} == {detected[0].incident_id}
    facts = {b.breach_id: facts_of(b, [], [], {}) for b in bs}
    acc = Acceptance(1, 12, "ics.new_action", "10.0.0.2", ("10.0.0.3",), (("operations", ("Write Var",)),),
                     "pivot is the engineering laptop", "tester", 0)
    res = rescore(bs, detected, facts, TriageInputs(acceptances=[acc]), cfg, set(), {})
    ids = [i.incident_id for i in res.incidents]
    assert len(ids) == 2 == len(set(ids)) and detected[0].incident_id in ids
    by_id = {b.breach_id: b for b in res.breaches}
    assert by_id[12].score == 0.0 and by_id[12].incident_id is None
    assert by_id[11].incident_id == detected[0].incident_id != by_id[13].incident_id in ids
    assert set(res.rescored) == set(ids) and not res.dissolved
    # accepting all three dissolves it, with a note
    accs = [replace(acc, accept_id=k, actor=b.device, targets=tuple(b.devices[1:])) for k, b in enumerate(bs, 1)]
    gone = rescore(bs, detected, facts, TriageInputs(acceptances=accs), cfg, set(), {})
    assert gone.incidents == [] and gone.dissolved[detected[0].incident_id].startswith("dissolved: of its 3")
    assert rescore(bs, detected, facts, TriageInputs(), cfg, set(), {}).incidents == detected


@needs_demo
def test_accepting_every_breach_of_the_attacker_dissolves_the_incident_with_a_note(store: Path) -> None:
    from plantwatch.core.store import triage

    attacker = TRUTH["attacker"]["ip"]
    before = built(store)
    inc0 = attack_incident(before)
    threat0 = {t["device"]: t["score"] for t in before["threat"]}
    assert threat0[attacker] >= 0.9
    with Store(store) as st:
        for b in before["breaches"]:
            if b["device"] == attacker:
                triage.accept(st, b["breach_id"], "the commissioning laptop", user="tester")
    after = built(store)
    assert not [i for i in after["incidents"] if i["device"] == attacker]
    assert after["triage"]["dissolved"] == [{"incident_id": inc0["incident_id"],
                                             "note": f"dissolved: of its {inc0['breaches']} breach(es), "
                                                     f"{inc0['breaches']} accepted as normal"}]
    # the threat scores are re-scored too: the attacker's go, its targets' fall back
    threat = {t["device"]: t["score"] for t in after["threat"]}
    assert attacker not in threat
    assert all(threat.get(d, 0) <= s for d, s in threat0.items())
    code, out, _ = cli("accepted", "--store", str(store))
    assert code == 0 and out.count("tester") == inc0["breaches"]


@needs_demo
def test_rescoring_groups_with_the_thresholds_detection_used(tmp_path: Path) -> None:
    from plantwatch.core.store.triage_apply import regroup_config

    models = tmp_path / "models.toml"
    models.write_text("[incidents]\ngap_s = 600\nmin_score = 0.6\n")
    path = tmp_path / "s.sqlite"
    code, out, err = cli("analyze", str(DEMO / "incident.pcapng.gz"), "--learn", str(DEMO / "learn.pcapng.gz"),
                         "--zones", str(DEMO / "zones.toml"), "--store", str(path), "--models", str(models), "--json")
    assert code == 0, err
    with Store(path, readonly=True) as st:
        cfg = regroup_config(st)
    assert cfg["incidents"]["gap_s"] == 600 and cfg["incidents"]["min_score"] == 0.6
    assert cfg["scoring"] == load_config()["scoring"]
    # re-scoring after an acceptance regroups with them too: the same as detecting without the breach
    incs = json.loads(out)["incidents"]
    rdp = next(b for b in json.loads(out)["breaches"] if b["model_id"] == "rdp.admin")
    assert cli("accept", str(rdp["breach_id"]), "--why", "x", "--store", str(path))[0] == 0
    with Store(path, readonly=True) as st:
        breaches = load_breaches(st)
    from plantwatch.core.detection import incidents as incidents_mod

    held = [replace(b, incident_id=None) for b in breaches if b.incident_id == rdp["incident_id"]
            and b.breach_id != rdp["breach_id"]]
    want = incidents_mod.build(held, cfg, {TRUTH["attacker"]["ip"]}, {})
    after = built(path)
    assert [i["breaches"] for i in after["incidents"]] == [w.breaches for w in want] == [incs[0]["breaches"] - 1]
