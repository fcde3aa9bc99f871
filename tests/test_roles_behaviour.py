"""Roles by behaviour: polling makes an HMI, diagnostics and program transfers an engineering
station, serving even one client a server; a trusted role earned by a newcomer or by an incident's
actor is shown unverified (`engineering?`) and no model trusts it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest

from plantwatch.core.inventory.roles import (
    POLL_MIN_READS,
    infer_roles,
    is_trusted,
    mark_unverified,
)
from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth import scenarios
from plantwatch.core.synth.demo import DemoPlant
from plantwatch.core.views import queries

BASE = {"zone_kind": "it", "is_router": False, "ics_served": [], "ics_clients": 0, "discover_ops": 0,
        "reprogram_ops": 0, "read_ops": 0, "ics_servers_read": 0, "server_clients": 0,
        "sessions_client": 0, "sessions_server": 0}


def role_of(**counters: object) -> tuple[str, str]:
    r = infer_roles(pl.DataFrame([dict(BASE, **counters)], schema_overrides={"ics_served": pl.List(pl.String)})
                    ).row(0, named=True)
    return r["role"], r["role_reasons"]


def test_engineering_routine_of_diagnostics_and_register_reads_is_not_hmi() -> None:
    # a day of SZL reads beside register reads of 3 PLCs: the diagnostics are a routine of their own
    role, why = role_of(read_ops=600, ics_servers_read=3, discover_ops=60, sessions_client=40)
    assert role == "engineering", why
    assert "60 DISCOVER operation(s) beside 600 READ" in why


def test_hmi_reading_a_device_id_now_and_then_stays_hmi() -> None:
    role, why = role_of(read_ops=50_000, ics_servers_read=4, discover_ops=4, sessions_client=4)
    assert role == "hmi" and "polls: 50000 READ operation(s) to 4 ICS device(s)" in why


def test_ten_reads_are_no_polling() -> None:
    role, why = role_of(read_ops=10, ics_servers_read=2, sessions_client=2)
    assert role == "workstation" and "too few to be polling" in why
    # the bound is per device read: as many reads spread over more devices are no polling either
    assert role_of(read_ops=POLL_MIN_READS * 3 - 1, ics_servers_read=3, sessions_client=3)[0] == "workstation"
    assert role_of(read_ops=POLL_MIN_READS * 3, ics_servers_read=3, sessions_client=3)[0] == "hmi"


def test_a_historian_serving_one_client_is_a_server() -> None:
    role, why = role_of(server_clients=1, sessions_server=48, sessions_client=120)
    assert role == "server" and "serves 1 client(s) in 48 session(s)" in why
    # one admin visit to a workstation that opens many sessions of its own makes no server
    assert role_of(server_clients=1, sessions_server=1, sessions_client=300)[0] == "workstation"
    # a device that mostly answers is a server whatever its count
    assert role_of(server_clients=1, sessions_server=3, sessions_client=2)[0] == "server"


def test_unverified_role_is_marked_and_never_trusted() -> None:
    d = infer_roles(pl.DataFrame([dict(BASE, reprogram_ops=1, sessions_client=3),
                                  dict(BASE, read_ops=100, ics_servers_read=1, sessions_client=1),
                                  dict(BASE, sessions_client=5)],
                                 schema_overrides={"ics_served": pl.List(pl.String)})).with_columns(
        pl.Series("device", ["10.0.0.9", "10.0.0.2", "10.0.0.7"]))
    m = mark_unverified(d, {"10.0.0.9": "first seen after learning", "10.0.0.7": "acted in incident 1"})
    assert m["role"].to_list() == ["engineering?", "hmi", "workstation"]
    assert m["role_reasons"][0].startswith("unverified: first seen after learning; sent 1 REPROGRAM")
    assert m["role_reasons"][2] == d["role_reasons"][2]  # an untrusted role has nothing to verify
    assert m.select(is_trusted(pl.col("role")))["role"].to_list() == [False, True, False]
    assert mark_unverified(d, {}).equals(d)


def test_demo_attacker_is_no_verified_engineering_station(demo_store: Path) -> None:
    con = sqlite3.connect(demo_store)
    roles = dict(con.execute("SELECT device, role FROM devices"))
    reasons = dict(con.execute("SELECT device, role_reasons FROM devices"))
    con.close()
    assert roles["10.10.10.157"] in ("engineering?", "hmi?", "workstation")
    assert roles["10.10.10.157"] != "engineering"
    assert reasons["10.10.10.157"].startswith("unverified: first seen after learning")
    # the plant's own stations keep their verified roles
    assert roles["10.20.20.50"] == "engineering" and roles["10.20.20.10"] == "hmi"
    assert roles["10.20.20.30"] == "hmi"


def _run(files: scenarios.ScenarioFiles, path: Path) -> dict[str, tuple[str, str]]:
    zones = Zones.load(files.zones)
    with Store(path) as store:
        report = Ingest(store, zones, mode="learn").run([files.learn])
        with store.transaction():
            queries.set_learn_end(store, report.captures[0].last_ts)
        Ingest(store, zones).run([files.detect])
    con = sqlite3.connect(path)
    out = {d: (r, w) for d, r, w in con.execute("SELECT device, role, role_reasons FROM devices")}
    con.close()
    return out


@pytest.mark.parametrize("seed", [2, 3])
def test_generated_plants_roles(tmp_path: Path, seed: int) -> None:
    """On generated plants of two shapes: the plant's stations are what they are, the attacker new
    after learning (scanning, reading, downloading) earns no verified trusted role."""
    p = DemoPlant(scenarios.draw_shape(seed))
    roles = _run(scenarios.generate("loud", seed, tmp_path / "s", detect_hours=10.5), tmp_path / "s.sqlite")
    assert roles[p.ews.ip][0] == "engineering", roles[p.ews.ip]
    assert roles[p.scada.ip][0] == "hmi", roles[p.scada.ip]
    attacker, why = roles[p.attacker.ip]
    assert attacker not in ("engineering", "hmi"), (attacker, why)
    if attacker.endswith("?"):
        assert why.startswith("unverified: first seen after learning"), why


def test_insider_on_the_engineering_station_is_unverified(tmp_path: Path) -> None:
    """A known engineering station acting in an incident (the insider at night) is shown unverified."""
    seed = 2
    p = DemoPlant(scenarios.draw_shape(seed))
    roles = _run(scenarios.generate("insider", seed, tmp_path / "s", detect_hours=4.0), tmp_path / "s.sqlite")
    role, why = roles[p.ews.ip]
    assert role == "engineering?" and why.startswith("unverified: acted in incident"), (role, why)
