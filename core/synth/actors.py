"""Actors and the two ways of running them.

An actor is something on the network acting on its own schedule, with its own random.Random
(seeded from the plant's seed and the actor's key). Two kinds:

- `WindowActor.run(t0, t1)` returns the records of the interactions it starts in [t0, t1);
  `windows()` steps every actor through the timeline hour by hour and merges their records in
  time order, so memory stays bounded however long the capture (the demo plant's days).
- `StreamActor.interactions()` is an endless stream of interactions (lists of records, each
  record optionally tagged with a countable event); `streams()` merges the streams in time order
  and stops after N packets (the benchmark's capture of a given size).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter

from plantwatch.core.synth.clock import HOUR, MS, SEC
from plantwatch.core.synth.plant import Plant, Record


class Actor:
    name = "actor"

    def __init__(self, p: Plant, key: str) -> None:
        self.p = p
        self.rng = random.Random(f"{p.shape.seed}:{key}")
        self._blob_rng = random.Random(f"{p.shape.seed}:{key}:blob")

    def opaque(self, n: int) -> bytes:
        """n opaque bytes (stand-in ciphertext or file data), from the actor's own stream."""
        return self.p.opaque.pieces(self._blob_rng, n)


class WindowActor(Actor):
    def run(self, t0: int, t1: int) -> Iterable[Record]:
        """Records of the interactions that start in [t0, t1)."""
        return ()


def windows(actors: Sequence[WindowActor], t_begin: int, t_end: int, step: int = HOUR) -> Iterator[Record]:
    """Every actor's records in [t_begin, t_end), in time order (ties in the order produced)."""
    heap: list[tuple[int, int, bytes]] = []
    seq = itertools.count()
    for t0 in range(t_begin, t_end, step):
        t1 = t0 + step
        for actor in actors:
            for ts, frame in actor.run(t0, t1):
                heapq.heappush(heap, (ts, next(seq), frame))
        while heap and heap[0][0] < t1:
            ts, _, frame = heapq.heappop(heap)
            if ts < t_end:
                yield ts, frame


TaggedRecord = tuple  # (ts_ns, frame) or (ts_ns, frame, tag)


def tagged(recs: list, tag: str, i: int = 0) -> list:
    """Mark record i of `recs` with `tag` (a countable event claimed in a capture's statistics)."""
    r = recs[i]
    recs[i] = (r[0], r[1], tag)
    return recs


class StreamActor(Actor):
    kind = ""  # the kind of traffic, for a capture's statistics

    def __init__(self, p: Plant, key: str, start: int) -> None:
        super().__init__(p, key)
        self.t = start + self.rng.randrange(SEC)

    def interactions(self) -> Iterator[list[TaggedRecord]]:
        raise NotImplementedError

    def take(self, n: int) -> bytes:
        """n opaque bytes, drawn with the actor's main random stream."""
        return self.p.opaque.slice(self.rng, n)

    def gap(self, mean_s: float) -> int:
        """An exponential pause of mean `mean_s` seconds (at least a millisecond)."""
        return int(self.rng.expovariate(1.0 / mean_s) * SEC) + MS

    def records(self, sid: int) -> Iterator[tuple]:
        """(ts, sid, n, frame, tag): in time order within the stream, ready for heapq.merge."""
        last = 0
        n = 0
        for inter in self.interactions():
            inter.sort(key=itemgetter(0))
            for r in inter:
                ts = r[0] if r[0] > last else last
                last = ts
                n += 1
                yield ts, sid, n, r[1], (r[2] if len(r) > 2 else None)


def streams(actors: Sequence[StreamActor], packets: int) -> Iterator[tuple[int, bytes, str, str | None]]:
    """The first `packets` records of all the streams, in time order: (ts_ns, frame, kind, tag)."""
    kinds = [a.kind for a in actors]
    merged = heapq.merge(*(a.records(i) for i, a in enumerate(actors)))
    for ts, sid, _n, frame, tag in itertools.islice(merged, packets):
        yield ts, frame, kinds[sid], tag
