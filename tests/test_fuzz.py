"""Hostile input: random and mutated frames of every decoded protocol through the decoders,
sessions, inventory, detection and the store; strings from the wire are never markup or code.

Bounded so CI stays fast: a few hundred hypothesis examples, no deadline (the machine is shared),
no timing assertion."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwatch.core.capture.batch import RawBatch
from plantwatch.core.decode import Decoder
from plantwatch.core.flows.sessions import SessionTracker
from plantwatch.core.inventory.devices import DeviceInventory
from plantwatch.core.pipeline.ingest import Ingest
from plantwatch.core.store.database import Store
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import write_pcapng
from plantwatch.core.views.textsafe import printable

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_772_431_200 * 1_000_000_000
C_MAC, S_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
C_IP, S_IP = "10.10.10.5", "10.20.20.9"
EXT_IP = "198.51.100.7"
HOSTILE_ASCII = "[bold red]x[/]\x1b[2J\x07$(touch /tmp/pwned)`id`{__import__('os')}"
HOSTILE = HOSTILE_ASCII + "\u202e"


def _tcp(dport: int, request: bytes, response: bytes = b"", ip: str = S_IP) -> list[bytes]:
    s = f.TcpSession(f.Leg.of(C_MAC, S_MAC, C_IP, ip), f.Leg.of(S_MAC, C_MAC, ip, C_IP), 40000, dport)
    recs = s.handshake(T0) + s.send(T0 + 1000, request)
    if response:
        recs += s.send(T0 + 2000, response, from_client=False)
    return [fr for _, fr in recs]


def _udp(dport: int, payload: bytes, sport: int = 40001, dst: str = S_IP) -> bytes:
    return f.udp_frame(C_MAC, S_MAC, C_IP, dst, sport, dport, payload)


def _corpus() -> list[bytes]:
    cert = f.make_certificate(HOSTILE[:40], seed=3)
    out: list[bytes] = []
    out += _tcp(502, f.modbus(1, 1, f.mb_read_req(3, 0, 10)), f.modbus(1, 1, f.mb_read_regs_resp(3, [1, 2])))
    out += _tcp(502, f.modbus(2, 1, f.mb_write_regs(5, [7, 8])), f.modbus(2, 1, f.mb_exception(16, 2)))
    out += _tcp(502, f.modbus(3, 1, f.mb_read_device_id()),
                f.modbus(3, 1, f.mb_read_device_id_resp([(0, HOSTILE.encode())])))
    out += _tcp(102, f.tpkt(f.cotp_cr()), f.tpkt(f.cotp_cc()))
    out += _tcp(102, f.s7_setup_comm(1), f.s7_setup_comm_ack(1))
    out += _tcp(102, f.s7_szl_read(2, 0x0011), f.s7_szl_response(2, 0x0011, 0, f.szl_0011_entries()))
    out += _tcp(102, f.s7_plc_stop(3), f.s7_plc_stop_ack(3))
    out += _tcp(102, f.s7_request_download(4, "OB", 1), f.s7_request_download_ack(4))
    out += _tcp(102, f.s7_write_var(5, 0x84, 1, 0, b"\x01\x02"), f.s7_write_var_ack(5))
    out += _tcp(20000, f.dnp3(1, 2, f.dnp3_read_class(0, (1, 2, 3))),
                f.dnp3(2, 1, f.dnp3_response_analog(0, [5, 6]), master=False))
    out += _tcp(20000, f.dnp3(1, 2, f.dnp3_direct_operate(1, 3)))
    out += _tcp(44818, f.enip_register_session(), f.enip(0x65, b"\x01\x00\x00\x00", session=7))
    out += _tcp(44818, f.enip_send_rr_data(7, f.cip_request(0x0E, 1, 1, 7)))
    out.append(_udp(44818, f.enip_list_identity()))
    out += _tcp(2404, f.iec104_i_frame(0, 0, 45, 6, 1, 100, b"\x01"), f.iec104_s_frame(1))
    out.append(_udp(47808, f.bacnet_who_is(), 47808, "10.20.20.255"))
    out.append(_udp(47808, f.bacnet_i_am(1234), 47808))
    out.append(_udp(47808, f.bacnet_read_property(1, 8, 1234), 47808))
    out += _tcp(443, f.tls_client_hello(bytes(32), sni=HOSTILE_ASCII), f.tls_server_flight(bytes(32), [cert]), ip=EXT_IP)
    out += _tcp(443, f.tls_client_hello(bytes(32), sni=None), f.tls_server_hello(bytes(32)), ip=EXT_IP)
    out += _tcp(3389, f.rdp_connection_request(HOSTILE_ASCII), f.rdp_connection_confirm())
    out.append(_udp(53, f.dns_query(1, "evil.example"), 53001))
    out.append(f.udp_frame(S_MAC, C_MAC, S_IP, C_IP, 53, 53001, f.dns_response(1, "x" * 60 + ".example", [C_IP])))
    out.append(f.udp_frame(C_MAC, "ff:ff:ff:ff:ff:ff", "0.0.0.0", "255.255.255.255", 68, 67,
                           f.dhcp(1, 7, C_MAC, hostname=HOSTILE_ASCII[:30])))
    out.append(_udp(137, f.nbns_query(1, "WORKGROUP"), 137, "10.10.10.255"))
    out.append(f.arp_frame(1, C_MAC, C_IP, S_IP))
    out.append(f.icmp_frame(C_MAC, S_MAC, C_IP, S_IP, f.icmp_echo(1, 1)))
    out.append(f.ether(S_MAC, C_MAC, 0x86DD, f.ipv6("fd00::1", "fd00::2", 17, f.udp("fd00::1", "fd00::2", 5000, 502, b"abc"))))
    out.append(f.ether(S_MAC, C_MAC, 0x0800, f.ipv4(C_IP, S_IP, 6, f.tcp(C_IP, S_IP, 1, 102, b"\x03\x00\x00\x07"
                                                                           b"\x02\xf0\x80")), vlan=20))
    return out


CORPUS = _corpus()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "flip", "cut", "splice", "grow", "lengths"]))
    if kind == "random":
        return draw(st.binary(min_size=0, max_size=300))
    base = bytearray(draw(st.sampled_from(CORPUS)))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 12))):
            i = draw(st.integers(0, len(base) - 1))
            base[i] = draw(st.integers(0, 255))
    elif kind == "cut":
        base = base[:draw(st.integers(0, len(base)))]
    elif kind == "splice":
        other = draw(st.sampled_from(CORPUS))
        i = draw(st.integers(0, len(base)))
        base = base[:i] + other[draw(st.integers(0, len(other))):]
    elif kind == "grow":
        i = draw(st.integers(0, len(base)))
        base[i:i] = draw(st.binary(min_size=1, max_size=64))
    else:  # length and count fields set to extremes, wherever they are
        for _ in range(draw(st.integers(1, 6))):
            i = draw(st.integers(14, max(14, len(base) - 2)))
            base[i:i + 2] = draw(st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x7f\xff", b"\x00\x01"]))
    return bytes(base)


def _batch(frames: list[bytes], linktypes: list[int]) -> RawBatch:
    data = b"".join(frames)
    lens = np.array([len(x) for x in frames], dtype=np.int32)
    off = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64) if frames else np.zeros(0, np.int64)
    n = len(frames)
    return RawBatch(data=np.frombuffer(data, np.uint8).copy(), offset=off, caplen=lens, wirelen=lens,
                    ts=T0 + np.arange(n, dtype=np.int64) * 1_000_000, linktype=np.array(linktypes, np.int32),
                    file_id=np.zeros(n, np.int32), frame=np.arange(1, n + 1, dtype=np.int64), paths=("fuzz",))


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])


@FUZZ
@given(st.lists(st.tuples(mutated(), st.sampled_from([1, 1, 1, 1, 101, 113, 0, 276])), min_size=1, max_size=40))
def test_decoders_sessions_and_inventory_never_raise(items: list[tuple[bytes, int]]) -> None:
    batch = _batch([x for x, _ in items], [lt for _, lt in items])
    dec = Decoder().decode(batch)
    assert dec.packets.height == len(batch)
    tracker = SessionTracker()
    ended = tracker.update(dec.packets, dec.ops)
    inv = DeviceInventory()
    inv.update(dec.packets, dec.ops, ended, endpoints=tracker.last_endpoints)
    still = tracker.open_sessions()
    inv.update(pl.DataFrame(), None, None, open_sessions=still)
    inv.devices()
    for frame in (ended, still):
        for col in ("tls_sni", "rdp_cookie", "cert_subject", "cert_issuer"):
            for v in frame[col].drop_nulls().to_list():
                assert isinstance(v, str)
                _no_control(printable(v))


def _no_control(s: str) -> None:
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u2028" for c in s), repr(s)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for every example: each example's capture is appended to what came before."""
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=60))
def test_whole_pipeline_to_the_store_never_raises(fuzz_dir: Path, frames: list[bytes]) -> None:
    d = fuzz_dir
    cap = d / f"c{abs(hash(tuple(frames))) % 10**12}.pcapng"
    write_pcapng(cap, [(T0 + i * 3_000_000_000, fr) for i, fr in enumerate(frames)])
    with Store(d / "fuzz.sqlite") as store:
        report = Ingest(store).run([cap])
        assert report.detection is not None or report.captures[0].skipped  # same bytes: counted once
        assert store.integrity_ok()
    cap.unlink()


def test_wire_strings_stay_text_in_the_report(tmp_path: Path) -> None:
    """Markup, escape sequences and shell syntax in SNI, RDP cookie, certificate and DHCP names
    reach the report as plain strings and the terminal summary with control characters escaped."""
    from click.testing import CliRunner

    from plantwatch.tui.cli import main

    cap = tmp_path / "hostile.pcapng"
    write_pcapng(cap, [(T0 + i * 1_000_000, fr) for i, fr in enumerate(CORPUS)])
    marker = Path("/tmp/pwned")
    marker.unlink(missing_ok=True)
    res = CliRunner().invoke(main, ["analyze", str(cap), "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output and "\u202e" not in res.output
    res = CliRunner().invoke(main, ["analyze", str(cap), "--json", "--store", str(tmp_path / "j.sqlite")])
    assert res.exit_code == 0
    assert "[bold red]x[/]" in res.output or "[bold red]x[/]" in res.output.replace("\\u001b", "")
    assert not marker.exists()


# the names a module would use to run text as code or unpickle it
_FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
_FORBIDDEN_ATTRS = {("pickle", "loads"), ("pickle", "load"), ("marshal", "loads"), ("os", "system"),
                    ("os", "popen"), ("yaml", "load")}


@pytest.mark.parametrize("pkg", ["core", "tui"])
def test_no_code_path_executes_data(pkg: str) -> None:
    """Static guard: no eval/exec/pickle/os.system anywhere, and subprocesses never via a shell."""
    bad = []
    for path in sorted((ROOT / pkg).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            if isinstance(fn, ast.Name) and fn.id in _FORBIDDEN_CALLS:
                bad.append(f"{path.name}:{node.lineno} {fn.id}")
            if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) and (fn.value.id, fn.attr) in _FORBIDDEN_ATTRS:
                bad.append(f"{path.name}:{node.lineno} {fn.value.id}.{fn.attr}")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    bad.append(f"{path.name}:{node.lineno} shell=")
    assert not bad, bad
