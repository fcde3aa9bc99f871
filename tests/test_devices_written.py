"""A run writes only the device rows that can have changed (core/inventory/changes.py,
core/pipeline/devices_out.py), and the devices table ends exactly as a full rewrite leaves it:
the same captures analysed run by run into two stores, one of them rewriting every row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from plantwatch.core.inventory.zones import Zones
from plantwatch.core.pipeline import devices_out
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth import mixed

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"
ZONES = ROOT / "demo_data" / "zones.toml"


@pytest.fixture(scope="module")
def plants(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two mixed plants on one layout (names, ARP, routers, VLANs; shared and new addresses)."""
    out = tmp_path_factory.mktemp("plants")
    paths = [out / f"mixed{seed}.pcapng" for seed in (3, 4)]
    for seed, p in zip((3, 4), paths, strict=True):
        mixed.generate(p, 20_000, seed)
    return paths


def _table(path: Path) -> list[tuple]:
    with Store(path, readonly=True) as st:
        return st.execute("SELECT * FROM devices ORDER BY device").fetchall()


def test_only_changed_rows_are_written_and_the_table_is_the_full_rewrite(
        plants: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[int] = []
    real_upsert = Store.upsert

    def counting(self: Store, table: str, frame: pl.DataFrame, *a: Any, **k: Any) -> Any:
        if table == "devices" and self.path.endswith("changed.sqlite"):
            written.append(frame.height)
        return real_upsert(self, table, frame, *a, **k)

    monkeypatch.setattr(Store, "upsert", counting)
    full_rows = devices_out.rows_to_write
    zones = Zones.load(ZONES)
    runs: list[tuple[list[Path], Zones | None]] = [
        ([plants[0]], None), ([plants[1]], None), ([REAL / "s7comm_snap7.pcap"], None),
        ([REAL / "s7comm_diag_read.pcapng"], None), ([REAL / "modbus_mixed_mb2.pcap"], zones), ([REAL / "iec104_misc.pcap"], zones)]
    changed, full = tmp_path / "changed.sqlite", tmp_path / "full.sqlite"
    for files, run_zones in runs:
        written.clear()
        with Store(changed) as st:   # rows whose role detection marked unverified are written again
            unverified = st.execute("SELECT COUNT(*) FROM devices WHERE role LIKE '%?'").fetchone()[0]
        with Store(changed) as st:
            Ingest(st, zones=run_zones).run(files)
        with monkeypatch.context() as m, Store(full) as st:
            m.setattr(devices_out, "rows_to_write", lambda store, inv, devices: devices)
            Ingest(st, zones=run_zones).run(files)
        assert devices_out.rows_to_write is full_rows
        assert _table(changed) == _table(full), files
        with Store(changed, readonly=True) as st:
            total = st.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
        if files[0].name == "s7comm_diag_read.pcapng":   # same zones: its devices and snap7's
            assert 0 < written[0] <= 6 + unverified and total > 100   # (whose sessions were still open)
        if files[0].name == "modbus_mixed_mb2.pcap":   # other zones: every row again (a second,
            assert written[0] == total                 # smaller upsert marks unverified roles)
