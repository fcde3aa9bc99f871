"""The OUI table's cache: used when fresh, rebuilt when the manuf file changes or the cache is bad."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plantwatch.core.inventory.oui import OuiTable

MANUF = "00:1B:1B\tSiemens\tSiemens AG\n00:80:F4\tTelemech\tTelemecanique Electrique\n" \
        "70:B3:D5:1F:C0:00/36\tAcme\tAcme Sensors\n"


@pytest.fixture
def manuf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "manuf"
    path.write_text(MANUF)
    return path


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cls: type, path: str) -> OuiTable:
        raise AssertionError("parsed the manuf file although the cache is fresh")
    monkeypatch.setattr(OuiTable, "from_manuf", classmethod(refuse))


def test_second_load_comes_from_the_cache(manuf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = OuiTable.cached(str(manuf))
    files = list((manuf.parent / "cache" / "plantwatch").iterdir())
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    _no_parse(monkeypatch)
    second = OuiTable.cached(str(manuf))
    assert second.lookup(0x001B1B123456) == first.lookup(0x001B1B123456) == "Siemens AG"
    assert second.lookup(0x70B3D51FC123) == "Acme Sensors"


def test_a_changed_manuf_file_is_parsed_again(manuf: Path) -> None:
    assert OuiTable.cached(str(manuf)).lookup(0x0080F4000001) == "Telemecanique Electrique"
    manuf.write_text(MANUF.replace("Telemecanique Electrique", "Schneider Electric"))
    os.utime(manuf, ns=(1, 1))
    assert OuiTable.cached(str(manuf)).lookup(0x0080F4000001) == "Schneider Electric"


def test_a_broken_cache_file_is_rebuilt(manuf: Path) -> None:
    OuiTable.cached(str(manuf))
    (cache,) = (manuf.parent / "cache" / "plantwatch").iterdir()
    cache.write_bytes(b"\x00garbage")
    assert OuiTable.cached(str(manuf)).lookup(0x001B1B000001) == "Siemens AG"
    assert cache.read_bytes() != b"\x00garbage"


def test_an_unwritable_cache_costs_only_the_parse(manuf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/plantwatch-cannot-write-here")
    assert OuiTable.cached(str(manuf)).lookup(0x001B1B000001) == "Siemens AG"
