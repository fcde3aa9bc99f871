"""Offline vulnerability matching: version ranges, vendor aliases, CPE names, `vulns import` of
the fixture feed (tests/data/vulns) marking exactly the devices whose versions fall in range."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwatch.core.inventory.cpe import cpe_names
from plantwatch.core.inventory.vendors import canonical
from plantwatch.core.inventory.versions import affected, compare, parse_range
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.store.vulns import AdvisoryError, import_path
from plantwatch.core.views.console.identity import names_match, summaries, vulnerabilities
from plantwatch.tui.cli import main
from tests.test_tshark_identity import _built

DATA = Path(__file__).parent / "data"
REAL, ZEEK, VULNS = DATA / "real", DATA / "zeek", DATA / "vulns"


@pytest.mark.parametrize("a,b,want", [
    ("V4.2.3", "4.2.3", 0), ("2.011", "2.11", 0), ("03.00.05", "3.0.5", 0), ("4.2", "4.2.0", 0),
    ("V4.2.3", "V4.2.10", -1), ("2.011", "2.2", 1), ("16.020", "16.3", 1), ("v3.10", "03.00.05", 1),
])
def test_versions_compare_as_advisories_mean_them(a: str, b: str, want: int) -> None:
    assert compare(a, b) == want


@pytest.mark.parametrize("text,version,hit", [
    ("<V4.2.3", "V4.2.3", False), ("<V4.2.3", "V4.2.2", True), ("<=V4.2.3", "4.2.3", True),
    ("vers:intdot/>=2.011|<=16.020", "2.011", True), ("vers:intdot/>=2.011|<=16.020", "2.010", False),
    ("vers:intdot/>=2.011|<=16.020", "16.020", True), ("vers:intdot/>=2.011|<=16.020", "16.021", False),
    (">03.00.05", "03.00.05", False), (">=03.00.05", "3.0.5", True),
    ("V3.0 <= version < V3.2", "V3.1.9", True), ("V3.0 <= version < V3.2", "V3.2", False),
    ("V20.011 and prior", "20.011", True), ("V20.011 and prior", "20.012", False),
    ("All versions", "anything 1", True), ("03.00.05", "3.0.5", True), ("03.00.05", "3.0.6", False),
])
def test_ranges(text: str, version: str, hit: bool) -> None:
    rng = parse_range(text)
    assert rng is not None
    assert affected(version, [rng] if rng else []) is hit


def test_a_version_without_digits_is_never_in_a_bounded_range() -> None:
    assert not affected("unknown", [{"to": "4.0"}])
    assert parse_range("see vendor notice") is None


def test_vendor_aliases_and_cpe_names() -> None:
    assert canonical("Rockwell Automation/Allen-Bradley") == canonical("Rockwell Automation, Inc.") \
        == "rockwellautomation"
    assert canonical("Schneider Automation, Inc.") == canonical("schneider-electric") == "schneider-electric"
    assert canonical("Acme Widgets GmbH") == "acme_widgets"
    s7 = {"model": "6ES7 315-2EH14-0AB0", "module": "CPU 315-2 PN/DP", "firmware": "V3.2.7"}
    assert cpe_names(s7) == ["cpe:2.3:h:siemens:cpu_315-2_pn\\/dp:-:*:*:*:*:*:*:*",
                             "cpe:2.3:o:siemens:cpu_315-2_pn\\/dp_firmware:v3.2.7:*:*:*:*:*:*:*"]
    assert cpe_names({"product": "1756-ENBT/A"}) == []  # no vendor stated or inferable


def test_product_names_match_whole_words_with_a_digit() -> None:
    s7 = {"module": "CPU 315-2 PN/DP", "model": "6ES7 315-2EH14-0AB0"}
    assert names_match("SIMATIC S7-300 CPU 315-2 PN/DP", s7)
    assert names_match("simatic_s7-300_cpu_315-2_pn\\/dp_firmware", s7)
    assert not names_match("SIMATIC S7-300 CPU 315-2 DP", s7)
    assert not names_match("CPU", {"module": "CPU"})
    assert names_match("1756-ENBT", {"product": "1756-ENBT/A"})
    assert not names_match("1756-EN2T", {"product": "1756-ENBT/A"})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("vulns")
    path = tmp / "s.sqlite"
    with Store(path) as st:
        Ingest(st).run([REAL / "s7comm_snap7.pcap", ZEEK / "s7ident" / "s7ident.pcap",
                        REAL / "openics_EIP-FirmwareChange_10650-10700.pcap",
                        REAL / "openics_EIP-SoftwareDownload_1-60.pcap", _built(tmp)])
    return path


def test_import_marks_exactly_the_devices_in_range(store: Path) -> None:
    with Store(store) as st:
        res = import_path(st, VULNS)
        assert (res.files, res.advisories, res.products, res.skipped) == (3, 4, 6, [])
        found = vulnerabilities(st)
        got = {(dev, m.component, m.cve) for dev, ms in found.items() for m in ms}
        assert got == {
            ("172.17.0.2", "", "CVE-0000-1001"),                      # V3.2.6 < 3.2.7
            ("192.168.10.120", "backplane slot 0", "CVE-0000-1002"),  # 16.020 <= 16.020, >= 2.011
            ("10.20.20.10", "", "CVE-0000-2001"),                    # v3.10 in [03.00.05, 03.20)
        }
        # not marked: snap7's V3.2.7 (exclusive bound 3.2.7), s7ident's V3.2.6 for CVE-0000-2002
        # (< 3.2.6), the ENBT's 4.003 (>= 4.004), the S7-1500 nobody has
        m = found["192.168.10.120"][0]
        assert (m.cvss, m.advisory_id, m.firmware, m.versions) == (8.6, "ICSA-TEST-0002", "16.020",
                                                                    ">= 2.011 <= 16.020")
        assert found["10.20.20.10"][0].cvss == 9.8
        s = summaries(st)
        assert s["default", "172.17.0.2"].vulns == 1 and s["default", "134.217.61.211"].vulns == 0
        assert (s["default", "134.217.61.211"].model, s["default", "134.217.61.211"].firmware) == \
            ("6ES7 315-2EH14-0AB0", "V3.2.7")
        assert s["default", "192.168.10.120"].model == "1756-ENBT/A"   # the device itself before its modules
        # importing again replaces, never doubles
        import_path(st, VULNS)
        assert st.execute("SELECT COUNT(*) FROM vuln_products").fetchone()[0] == 6


def test_cli_import_and_bad_input(store: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["vulns", "import", str(VULNS / "csaf"), "--store", str(store)])
    assert r.exit_code == 0, r.output
    assert "imported 2 advisories" in r.output
    r = CliRunner().invoke(main, ["vulns", "list", "--store", str(store)])
    assert "172.17.0.2\tCVE-0000-1001\tCVSS 7.5\tICSA-TEST-0001" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    r = CliRunner().invoke(main, ["vulns", "import", str(bad), "--store", str(store)])
    assert r.exit_code == 2
    assert r.output.strip() == f"plantwatch: {bad}: neither a CSAF 2.0 document nor an NVD CVE JSON 2.0 feed"
    with pytest.raises(AdvisoryError), Store(store) as st:
        import_path(st, tmp_path / "missing")


def test_analyze_json_lists_the_matching_advisories(tmp_path: Path) -> None:
    """One CSAF file imported first, a capture analysed into the same store: `--json` gives the
    CVE, its CVSS base score and the advisory id on the device in range, schema-valid."""
    import json

    jsonschema = pytest.importorskip("jsonschema")
    store = tmp_path / "s.sqlite"
    r = CliRunner().invoke(main, ["vulns", "import", str(VULNS / "csaf" / "icsa-test-0001.json"), "--store", str(store)])
    assert r.exit_code == 0 and "imported 1 advisor" in r.output, r.output
    r = CliRunner().invoke(main, ["analyze", str(ZEEK / "s7ident" / "s7ident.pcap"), "--store", str(store), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    schema = json.loads((Path(__file__).parent.parent / "core" / "data" / "analyze.schema.json").read_text())
    jsonschema.validate(data, schema)
    dev = next(d for d in data["devices"] if d["device"] == "172.17.0.2")
    assert [(v["cve"], v["cvss"], v["advisory_id"], v["firmware"]) for v in dev["vulnerabilities"]] == [
        ("CVE-0000-1001", 7.5, "ICSA-TEST-0001", "V3.2.6")]
    assert all(not d.get("vulnerabilities") for d in data["devices"] if d["device"] != "172.17.0.2")
