"""The wheel as a new user gets it: built from this tree, installed into a fresh virtualenv in a
temporary directory, run from outside the repository. It must carry the demo and install exactly
one top-level package, `plantwatch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(venv python, its site-packages) with only the built wheel of plantwatch installed; the
    dependencies come from the running environment through a .pth line, so nothing is downloaded."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(ROOT)], check=True, cwd=tmp)
    wheel = next(dist.glob("plantwatch-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, cwd=tmp)
    return py, site


def _run(py: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PLANTWATCH_STORE")}
    return subprocess.run([str(py.parent / "plantwatch"), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def test_one_top_level_package(installed: tuple[Path, Path]) -> None:
    _, site = installed
    tops = {p.name for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))}
    assert tops == {"plantwatch"}
    assert not (site / "core").exists() and not (site / "tui").exists()
    pkg = site / "plantwatch"
    for stage in ("capture", "decode", "flows", "inventory", "detection", "store", "views", "pipeline", "synth"):
        assert (pkg / "core" / stage / "__init__.py").exists(), stage
    assert (pkg / "demo_data" / "incident.pcapng.gz").stat().st_size > 1_000_000
    assert (pkg / "core" / "data" / "models.toml").exists()


def test_analyze_the_bundled_demo_outside_the_repository(installed: tuple[Path, Path], tmp_path: Path) -> None:
    py, site = installed
    capture = site / "plantwatch" / "demo_data" / "incident.pcapng.gz"
    zones = site / "plantwatch" / "demo_data" / "zones.toml"
    r = _run(py, "analyze", str(capture), "--zones", str(zones), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["captures"][0]["packets"] > 100_000
    assert any(d["address"] == "10.10.10.157" for d in doc["devices"])  # the demo's attacker


def test_demo_help_and_module_entry_point(installed: tuple[Path, Path], tmp_path: Path) -> None:
    py, _ = installed
    r = _run(py, "demo", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "Learn from the bundled plant capture" in r.stdout
    m = subprocess.run([str(py), "-m", "plantwatch", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert m.returncode == 0 and "analyze" in m.stdout
    import_core = subprocess.run([str(py), "-c", "import core"], capture_output=True, text=True, cwd=tmp_path)
    assert import_core.returncode != 0


def test_exports_work_from_the_wheel(installed: tuple[Path, Path], tmp_path: Path) -> None:
    """The templates and the ATT&CK table ship in the wheel: report --html and export incident."""
    import sqlite3

    py, site = installed
    demo = site / "plantwatch" / "demo_data"
    store = tmp_path / "s.sqlite"
    r = _run(py, "analyze", str(demo / "incident.pcapng.gz"), "--zones", str(demo / "zones.toml"),
             "--store", str(store), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run(py, "report", "--store", str(store), "--html", str(tmp_path / "plant.html"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Inventory by zone and role" in (tmp_path / "plant.html").read_text()
    with sqlite3.connect(store) as db:
        iid = db.execute("SELECT incident_id FROM incidents ORDER BY score DESC").fetchone()[0]
    r = _run(py, "export", "incident", str(iid), "--store", str(store), "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "b" / "report.html").read_text()
    assert "Program Download" in page and "<svg" in page
    assert (tmp_path / "b" / "evidence.pcapng").stat().st_size > 1000
