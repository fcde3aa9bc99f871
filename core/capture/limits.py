"""Running under an address-space limit (`ulimit -v`, RLIMIT_AS).

The resident memory of a run is a few hundred MB, but the virtual reservations around it are not:
glibc gives each thread its own malloc arena (64 MB of address space each), and polars' thread
pool (one thread per core), its allocator and OpenBLAS's threads reserve more. Under a 1 GiB limit
that made the 1M-packet bench abort (SIGABRT from a Rust allocation failure, no message) at a
peak RSS of 390 MB. fit_address_space(), called by the CLI before polars is imported, caps those
reservations when a limit is set (the 1M-packet bench then runs under 800 MiB); a limit under
1 GiB, the size the design's memory budget promises, gets one line naming it instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource

MIN_ADDRESS_SPACE = 1 << 30       # measured: the 1M-packet bench needs ~800 MiB, 640 MiB aborts
_M_ARENA_MAX = -8                 # glibc mallopt parameter
_THREAD_POOLS = ("POLARS_MAX_THREADS", "RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class AddressSpaceTooSmall(Exception):
    """str() is one line naming the limit."""


def address_space_limit() -> int | None:
    """The soft RLIMIT_AS in bytes, None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def limit_text(limit: int) -> str:
    return f"the address-space limit (ulimit -v {limit // 1024} kB, {limit / (1 << 20):,.0f} MiB)"


def fit_address_space() -> int | None:
    """Under an address-space limit: one malloc arena for all threads, and the thread pools that
    would size themselves to the machine at one thread (environment variables the user set are
    kept). Must run before polars or numpy are imported. Returns the limit, None when unlimited;
    raises AddressSpaceTooSmall under MIN_ADDRESS_SPACE (a Rust allocation failure would abort
    the process with no message, so the floor is checked up front)."""
    limit = address_space_limit()
    if limit is None:
        return None
    if limit < MIN_ADDRESS_SPACE:
        raise AddressSpaceTooSmall(f"{limit_text(limit)} is too small: plantwatch needs at least "
                                   f"{MIN_ADDRESS_SPACE >> 20} MiB of address space")
    for name in _THREAD_POOLS:
        os.environ.setdefault(name, "1")
    os.environ.setdefault("MALLOC_ARENA_MAX", "1")  # for child processes
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to cap
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)
    return limit
