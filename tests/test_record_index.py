"""capture/record_index.py: reading an uncompressed pcapng from a frame on, entered at a block
offset it learnt, gives exactly the records the full reader gives (frame numbers included)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from plantwatch.core.capture.files import read_batches
from plantwatch.core.capture.record_index import batches_from, forget
from plantwatch.core.synth import frames as f
from plantwatch.core.synth.pcapwriter import write_pcapng

REAL = Path(__file__).resolve().parent / "data" / "real"


def records(batches, lo: int) -> list[tuple[int, int, bytes]]:
    out = []
    for b in batches:
        for i in np.nonzero(b.frame >= lo)[0]:
            o = int(b.offset[i])
            out.append((int(b.frame[i]), int(b.ts[i]), b.data[o:o + int(b.caplen[i])].tobytes()))
    return out


def big_capture(path: Path, n: int = 40_000) -> Path:
    t = 1_700_000_000 * 1_000_000_000
    recs = [(t + i * 1000, f.udp_frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2",
                                        1000 + i % 50, 53, bytes(200 + i % 300))) for i in range(n)]
    write_pcapng(path, recs)
    return path


def test_same_records_from_any_frame(tmp_path: Path) -> None:
    cap = big_capture(tmp_path / "big.pcapng")
    assert cap.stat().st_size > 3 * (4 << 20)        # several read blocks, so several offsets
    forget()
    full = records(read_batches([cap]), 1)
    for lo in (30_000, 1, 12_345, 39_999, 30_001):   # the later reads start at learnt offsets
        assert records(batches_from(cap, lo), lo) == full[lo - 1:]


def test_real_capture_and_the_fallbacks(tmp_path: Path) -> None:
    cap = REAL / "s7comm_rw_vartab.pcapng"
    full = records(read_batches([cap]), 1)
    assert records(batches_from(cap, 5), 5) == full[4:]
    gz = tmp_path / "c.pcapng.gz"
    gz.write_bytes(gzip.compress(cap.read_bytes(), mtime=0))
    assert records(batches_from(gz, 5), 5) == full[4:]          # gzip: read from the start
