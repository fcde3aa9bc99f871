"""The pipeline's status is one immutable snapshot swapped under a lock: the pipeline thread
(batches) and the UI thread (pause, speed) change it at the same time without losing a change."""

from __future__ import annotations

import threading
from pathlib import Path

from plantwatch.core.pipeline.ingest import BatchDone
from plantwatch.tui.app import make_app
from plantwatch.tui.live import DemoPipeline, FilesPipeline, PipelineStatus

N = 3000


def test_changes_from_two_threads_are_all_kept_and_reported_in_order(tmp_path: Path) -> None:
    p = FilesPipeline(tmp_path / "s.sqlite", [])
    seen: list[PipelineStatus] = []
    p._on_status = seen.append
    start = threading.Barrier(3)

    def batches() -> None:
        start.wait()
        for i in range(N):
            p._batch_done(BatchDone(packets=2, first_ts=i, last_ts=i, sessions_ended=0))

    def ui() -> None:
        start.wait()
        for i in range(N):
            p._emit(message=f"ui {i}")
            p._update(lambda st: {"generation": st.generation + 1})

    threads = [threading.Thread(target=f) for f in (batches, batches, ui)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.status.packets == 2 * 2 * N
    assert p.status.generation == 3 * N
    assert len(seen) == 4 * N and seen[-1] is p.status
    gens = [s.generation for s in seen]
    assert gens == sorted(gens)  # reports leave in the order the snapshots were made


def test_the_demo_is_recognised_by_its_type(tmp_path: Path) -> None:
    class MyDemo(DemoPipeline):
        pass

    assert make_app(tmp_path / "a.sqlite", MyDemo(tmp_path / "a.sqlite", tmp_path)).is_demo
    assert not make_app(tmp_path / "b.sqlite", FilesPipeline(tmp_path / "b.sqlite", [])).is_demo
