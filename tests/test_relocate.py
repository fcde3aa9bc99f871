"""Capture paths in the store are absolute, and `plantwatch relocate` points a store at the
folder its captures were moved to, verifying each file by its fingerprint."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.capture.refs import PacketRef
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.views.packet_cut import CutError, cut_packet
from plantwatch.tui.cli import main
from tests.tui_support import hostile_capture


def paths(store: Path) -> list[str]:
    with Store(store, readonly=True) as st:
        return [r[0] for r in st.execute("SELECT path FROM captures ORDER BY capture_id")]


def test_relative_capture_path_is_stored_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "caps").mkdir()
    hostile_capture(tmp_path / "caps" / "a.pcapng")
    monkeypatch.chdir(tmp_path)
    with Store(tmp_path / "s.sqlite") as st:
        Ingest(st).run([Path("caps/a.pcapng")])
    assert paths(tmp_path / "s.sqlite") == [str(tmp_path / "caps" / "a.pcapng")]


def test_relocate_moved_captures(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    cap = hostile_capture(old / "a.pcapng")
    other = old / "b.pcapng.gz"                                 # a second capture, other bytes
    other.write_bytes(gzip.compress(cap.read_bytes(), mtime=0))
    store = tmp_path / "s.sqlite"
    with Store(store) as st:
        Ingest(st).run([cap, other])
    shutil.move(str(cap), new / "a.pcapng")
    shutil.move(str(other), tmp_path / "b.pcapng.gz")
    (new / "b.pcapng.gz").write_bytes(gzip.compress(b"same name, not the same file"))
    with Store(store, readonly=True) as st, pytest.raises(CutError, match="is gone"):
        cut_packet(st, PacketRef(1, 1))

    r = CliRunner().invoke(main, ["relocate", "--store", str(store), str(new), "--dry-run"])
    assert r.exit_code == 0 and "would point" in r.output
    assert paths(store) == [str(old / "a.pcapng"), str(old / "b.pcapng.gz")]
    r = CliRunner().invoke(main, ["relocate", "--store", str(store), str(new)])
    assert r.exit_code == 0, r.output
    assert f"{old / 'a.pcapng'} -> {new / 'a.pcapng'}" in r.output
    assert "other content" in r.output and "1 moved capture(s)" in r.output
    assert paths(store) == [str(new / "a.pcapng"), str(old / "b.pcapng.gz")]
    with Store(store, readonly=True) as st:
        cut = cut_packet(st, PacketRef(1, 1))
        cut.remove()
        assert cut.source == str(new / "a.pcapng") and cut.packets[0].frame == 1

    r = CliRunner().invoke(main, ["relocate", "--store", str(store), str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "not a directory" in r.output
    r = CliRunner().invoke(main, ["relocate", "--store", str(store), str(old)])
    assert r.exit_code == 2 and "no capture of" in r.output
