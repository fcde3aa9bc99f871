"""Headless Chromium (Debian's `chromium`) for the tests of the HTML reports: the DOM it built
and a screenshot decoded to pixels, with the network off and a fresh profile each run."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(
    chromium() is None, reason="chromium is not installed (Debian: apt-get install chromium; make setup does it as root)")


def _run(args: list[str], tmp: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    profile = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=tmp)


def dump_dom(html: Path, tmp: Path) -> str:
    """The DOM Chromium built from the file (serialised), as it would show it."""
    r = _run(["--dump-dom", html.resolve().as_uri()], tmp)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    return r.stdout.decode("utf-8")


def screenshot(html: Path, tmp: Path, size: tuple[int, int] = (1200, 1600)) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of Chromium's rendering of the page."""
    png = tmp / "shot.png"
    r = _run([f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", html.resolve().as_uri()], tmp)
    assert r.returncode == 0 and png.exists(), r.stderr.decode(errors="replace")[-2000:]
    return decode_png(png.read_bytes())


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """A minimal decoder for 8-bit RGB/RGBA PNGs (what Chromium writes): rows of RGB bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    h = ctype = 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        prev = line
        rows.append(bytes(line) if bpp == 3 else bytes(v for j in range(0, stride, 4) for v in line[j:j + 3]))
    return w, h, rows


def count_colour(rows: list[bytes], rgb: tuple[int, int, int], tol: int = 24) -> int:
    n = 0
    for row in rows:
        for i in range(0, len(row), 3):
            if all(abs(row[i + k] - rgb[k]) <= tol for k in range(3)):
                n += 1
    return n
