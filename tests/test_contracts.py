"""The typed contracts between stages: packet references, the model and decoder Protocols, model
ids (config keys, stored values, filters; titles only shown), the declared features the models
read, and the V4 migration of a store written before ids."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from plantwatch.core.capture.refs import (
    PacketRef,
    pack_refs,
    ref_capture_expr,
    ref_expr,
    ref_frame_expr,
    unpack_refs,
)
from plantwatch.core.decode import APP_MODULES
from plantwatch.core.decode.contracts import AppDecoder
from plantwatch.core.detection.contracts import DetectionModel, DetectionSink
from plantwatch.core.detection.features import FEATURES, FeatureError, declared_frame, schema
from plantwatch.core.detection.models import (
    BY_TITLE,
    MODELS,
    MODULES,
    ConfigDeprecation,
    load_config,
    matching_models,
)
from plantwatch.core.detection.models.base import Context
from plantwatch.core.store.database import Store
from plantwatch.core.store.migrations import V4_MODEL_IDS
from plantwatch.core.store.writers import StoreSink
from plantwatch.core.views import queries, report

DATA = Path(__file__).parent / "data"
V3_STORE = DATA / "stores" / "v3_model_titles.sqlite"   # written by main before model ids
V3_REPORT = DATA / "stores" / "v3_model_titles.report.json"  # main's analyze --json of it
SNAP7 = DATA / "real" / "s7comm_snap7.pcap"


# --- packet references --------------------------------------------------------------------------

def test_packet_ref_round_trips_in_every_form() -> None:
    r = PacketRef(3, 4_000_000_000)
    assert PacketRef.unpack(r.pack()) == r and r.pack() == (3 << 32) | 4_000_000_000
    caps, frames = np.array([0, 1, 7, 2**31 - 1]), np.array([1, 2**32 - 1, 57, 9])
    packed = pack_refs(caps, frames)
    assert [PacketRef.unpack(p) for p in packed] == [PacketRef(int(c), int(f)) for c, f in zip(caps, frames, strict=True)]
    back = unpack_refs(packed)
    assert (back[0] == caps).all() and (back[1] == frames).all()
    df = pl.DataFrame({"c": caps.astype(np.int32), "f": frames}).with_columns(ref_expr("c", "f").alias("r"))
    assert df["r"].to_list() == packed.tolist()
    assert df.select(ref_capture_expr("r"), ref_frame_expr("r").alias("f2")).rows() == list(zip(caps, frames, strict=True))
    for bad in ((-1, 1), (1, 2**32)):
        with pytest.raises(ValueError):
            PacketRef(*bad)


# --- Protocols ----------------------------------------------------------------------------------

def test_every_model_and_decoder_module_fits_its_protocol() -> None:
    assert all(isinstance(m, DetectionModel) for m in MODULES)
    assert all(isinstance(m, AppDecoder) for m in APP_MODULES)
    assert not isinstance(json, AppDecoder)
    sink: DetectionSink = StoreSink.__new__(StoreSink)   # type-checked assignment
    assert callable(sink.write_detection) and callable(sink.write_baseline)


# --- model ids ----------------------------------------------------------------------------------

def test_model_ids_are_short_stable_and_key_the_config() -> None:
    assert len(MODELS) == len(MODULES) == len({m.MODEL.title for m in MODULES})
    assert all(re.fullmatch(r"[a-z]+\.[a-z_]+", i) for i in MODELS)
    text = resources.files("plantwatch.core").joinpath("data/models.toml").read_text()
    tables = set(tomllib.loads(text)) - {"baseline", "scoring", "incidents"}
    assert tables == set(MODELS)
    # the frozen V4 mapping of stored titles agrees with the models (models added after V4 were
    # stored by id from the start, so they are not in it)
    assert V4_MODEL_IDS.items() <= BY_TITLE.items()
    assert set(BY_TITLE.values()) - set(V4_MODEL_IDS.values()) == {
        "ics.role_contradiction", "ics.action_rate", "net.beacon", "net.arp_sweep", "ics.identity_changed",
        "ics.connection_rate", "net.connection_rate"}


def test_no_code_branches_on_a_model_title() -> None:
    root = Path(__file__).resolve().parent.parent
    titles = [m.title for m in MODELS.values()]
    allowed = {root / "core/store/migrations.py"}   # the frozen title -> id mapping of V4
    allowed |= {root / "core/detection/models" / f"{m.__name__.rsplit('.', 1)[1]}.py" for m in MODULES}
    offenders = []
    for d in ("core", "tui"):
        for p in sorted((root / d).rglob("*.py")):
            # the simulator's ground truth names the models it expects as data (eval takes ids
            # or titles); it decides nothing on them
            if p in allowed or p.is_relative_to(root / "core" / "synth"):
                continue
            text = p.read_text()
            offenders += [f"{p.relative_to(root)}: {t}" for t in titles if f'"{t}"' in text or f"'{t}'" in text]
    assert not offenders, offenders


def test_a_models_file_keyed_by_title_still_loads_with_one_note(tmp_path: Path) -> None:
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text('["Multiple Failed Internal Connections"]\nmin_failures = 4\n[scoring]\nimportance_scale = 3\n')
    new.write_text('["net.failed_internal"]\nmin_failures = 4\n[scoring]\nimportance_scale = 3\n')
    notes: list[str] = []
    assert load_config(old, on_note=notes.append) == load_config(new, on_note=notes.append)
    assert len(notes) == 1 and "\n" not in notes[0] and notes[0].startswith(f"{old}: ")
    assert "'Multiple Failed Internal Connections' -> 'net.failed_internal'" in notes[0]
    with pytest.warns(ConfigDeprecation):
        load_config(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(new)


def test_analyze_with_an_old_models_file_notes_it_once_on_stderr(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from plantwatch.tui.cli import main

    old = tmp_path / "old.toml"
    old.write_text('["Multiple New Action Commands"]\nmin_keys = 2\n')
    res = CliRunner().invoke(main, ["analyze", str(SNAP7), "--models", str(old), "--json"])
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if "deprecated" in line]
    assert notes == [f"plantwatch: {old}: model tables keyed by title are deprecated, use the ids: "
                     "'Multiple New Action Commands' -> 'ics.new_action'"]
    breaches = json.loads(res.stdout)["breaches"]
    assert {(b["model"], b["model_id"]) for b in breaches} == {
        ("Multiple New Action Commands", "ics.new_action"), ("Uncommon ICS Reprogram", "ics.reprogram")}


def test_filters_accept_ids_and_titles(tmp_path: Path) -> None:
    assert matching_models("ics.new_action") == matching_models("New Action") == ["ics.new_action"]
    assert set(matching_models("rdp")) == {"rdp.admin"}
    path = tmp_path / "s.sqlite"
    shutil.copy(V3_STORE, path)
    with Store(path) as st:
        by_id = queries.breaches(st, model="ics.reprogram")
        by_title = queries.breaches(st, model="uncommon ics reprogram")
        assert [r.breach_id for r in by_id.rows] == [r.breach_id for r in by_title.rows] != []
        assert by_id.rows[0].model == "Uncommon ICS Reprogram" and by_id.rows[0].model_id == "ics.reprogram"
        assert set(queries.breaches(st).models) == {"Uncommon ICS Reprogram", "Multiple New Action Commands"}
        ev_id = queries.connections(st, queries.parse_conn_filter("model:ics.reprogram"))
        ev_title = queries.connections(st, queries.parse_conn_filter('model:"ICS Reprogram"'))
        assert ev_id.total == ev_title.total > 0
        assert queries.breaches(st, model="no such model").rows == ()


# --- the V4 migration of a store written before ids ----------------------------------------------

def test_a_store_from_before_ids_migrates_and_reports_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(V3_STORE, path)
    with Store(path) as st:
        assert st.version >= 4
        assert {r[0] for r in st.execute("SELECT model FROM breaches")} == {"ics.new_action", "ics.reprogram"}
        meta = json.loads(st.execute("SELECT value FROM baseline_meta WHERE name = 'models'").fetchone()[0])
        assert set(meta) == set(V4_MODEL_IDS.values())   # the models the old store ran
        phases, timeline = st.execute("SELECT phases, timeline FROM incidents").fetchone()
        assert json.loads(phases)[0]["models"] == ["ics.reprogram", "ics.new_action"]
        assert {e["model"] for e in json.loads(timeline)} == {"ics.new_action", "ics.reprogram"}
        data = report.build(st)
    want = json.loads(V3_REPORT.read_text())

    def without_ids(o: object) -> object:
        if isinstance(o, dict):
            # fields added after the V3 report was saved: model ids, the maturity statement
            return {k: without_ids(v) for k, v in o.items()
                    if k not in ("model_id", "baseline_statement") and not (k == "id" and "state" in o)}
        return [without_ids(v) for v in o] if isinstance(o, list) else o

    assert without_ids(data) == want
    # and a run appended to the migrated store keeps detecting into it
    from plantwatch.core.pipeline.ingest import Ingest

    with Store(path) as st:
        Ingest(st).run([DATA / "real" / "modbus_mixed_mb2.pcap"])
        assert {r[0] for r in st.execute("SELECT DISTINCT model FROM breaches")} <= set(MODELS)


# --- declared features ----------------------------------------------------------------------------

def _declared_row(frame: str) -> dict:
    samples = {pl.Int64: 1, pl.Int32: 1, pl.UInt8: 1, pl.String: "x", pl.Boolean: False, pl.Float64: 0.5}
    return {k: [samples[type(t)]] for k, t in schema(frame).items()}


def _context(extra: dict | None = None) -> Context:
    frames = {f: pl.DataFrame(_declared_row(f), schema=schema(f)) for f in FEATURES}
    if extra:
        frames["S"] = frames["S"].with_columns(**{k: pl.lit(v) for k, v in extra.items()})
    return Context(S=frames["S"], ops=frames["ops"], V=frames["V"], D=frames["D"], cfg=load_config(),
                   hours_b=48.0, cold=False)


def test_a_model_reading_an_undeclared_column_fails() -> None:
    ctx = _context(extra={"c_hi": 7})   # an intermediate of the context builder, not a feature
    assert ctx.S.columns == list(schema("S"))

    def sneaky_model(ctx: Context) -> int:
        return int(ctx.S.filter(pl.col("c_hi") > 0).height)

    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        sneaky_model(ctx)


def test_every_model_runs_on_declared_features_only() -> None:
    ctx = _context()
    for mod in MODULES:
        mod.run(ctx)   # would raise ColumnNotFoundError on a column nobody declared


def test_a_context_frame_must_hold_every_declared_feature_with_its_type() -> None:
    row = _declared_row("S")
    with pytest.raises(FeatureError, match="missing ja3_known"):
        declared_frame("S", pl.DataFrame({k: v for k, v in row.items() if k != "ja3_known"}))
    wrong = pl.DataFrame(row, schema=schema("S")).with_columns(pl.col("port").cast(pl.Int64))
    with pytest.raises(FeatureError, match="port is Int64, declared Int32"):
        declared_frame("S", wrong)
    assert declared_frame("V", pl.DataFrame()).schema == schema("V")   # an empty frame gets the schema
    assert all(f.meaning for fs in FEATURES.values() for f in fs)
