"""Hostile strings on the way out (issue 17.8): a certificate whose names are longer than X.520
allows makes cryptography warn, and those warnings (with source paths) must not reach stderr or
the sensor log; `--jsonl` escapes the characters line-splitting tools take for line breaks
(U+2028, U+2029, U+0085), so every record is exactly one line for them too."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plantwatch.core.decode.tls_cert import cert_facts
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import write_pcapng

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_772_431_200 * 1_000_000_000
BREAKS = "\u2028\u2029\x85"


def _long_name_cert() -> bytes:
    key = ec.derive_private_key(7, ec.SECP256R1())
    with warnings.catch_warnings():  # building it warns too: that is the point of the fixture
        warnings.simplefilter("ignore")
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "o" * 200, _validate=False),
                          x509.NameAttribute(NameOID.COMMON_NAME, "historian-" + "c" * 120, _validate=False)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(9)
                .not_valid_before(dt.datetime(2026, 1, 1)).not_valid_after(dt.datetime(2027, 1, 1))
                .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_cert_facts_of_a_long_name_certificate_warn_nothing() -> None:
    der = _long_name_cert()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        subject, issuer, self_signed = cert_facts(der)
    assert got == []
    assert subject == f"CN=historian-{'c' * 120},O={'o' * 200}" and issuer == subject
    assert self_signed is True


def test_analyze_prints_no_python_warning_and_jsonl_lines_stay_lines(tmp_path: Path) -> None:
    s = f.TcpSession(f.Leg.of("02:00:00:00:00:0a", "02:00:00:00:00:0b", "10.10.10.5", "10.20.20.9"),
                     f.Leg.of("02:00:00:00:00:0b", "02:00:00:00:00:0a", "10.20.20.9", "10.10.10.5"),
                     40000, 443)
    recs = (s.handshake(T0) + s.send(T0 + 1000, f.tls_client_hello(b"r" * 32, sni="historian.plant"))
            + s.send(T0 + 2000, f.tls_server_flight(b"s" * 32, [_long_name_cert()]), from_client=False))
    cap = tmp_path / f"plant{BREAKS}capture.pcapng"
    write_pcapng(cap, recs)
    r = subprocess.run([sys.executable, "-W", "default", "-m", "plantwatch", "analyze", str(cap),
                        "--store", str(tmp_path / "s.sqlite"), "--jsonl"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "cryptography" not in r.stderr, r.stderr
    for ch in BREAKS:
        assert ch not in r.stdout
    lines = r.stdout.splitlines()  # str.splitlines breaks on U+2028/2029/0085 too
    assert lines == r.stdout.split("\n")[:-1]
    recs_out = [json.loads(ln) for ln in lines]
    assert [c["path"] for c in recs_out if c["type"] == "capture"] == [str(cap)]
