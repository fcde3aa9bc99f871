"""The Textual console. `make_app(...)` builds it for the CLI and the tests alike.

The app owns no data: a pipeline thread (tui/live.py) may fill the store, screens read it through
workers (tui/screens/base.py), and a timer compares the store's status with the last one seen to
decide when the visible screen reloads (at most once per tick, whatever the batch rate).
"""

from __future__ import annotations

import gc
import importlib
import os
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from plantwatch.core.store.database import Store
from plantwatch.core.views import queries
from plantwatch.tui.live import DemoPipeline, Pipeline, PipelineStatus
from plantwatch.tui.screens.base import BaseScreen, Loaded, Loader
from plantwatch.tui.widgets.status import StatusBar, StatusView

# the screens a key opens, imported by a worker once the device list is up (see _warm_screens)
SCREEN_MODULES = tuple(f"plantwatch.tui.screens.{m}" for m in
                       ("device", "breaches", "eventlog", "incidents", "breach", "packet", "help"))


class PipelineUpdate(Message):
    def __init__(self, status: PipelineStatus) -> None:
        super().__init__()
        self.status = status


class PlantwatchApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "plantwatch"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("space", "pause", "Pause"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
        Binding("greater_than_sign", "finish", "To end", key_display=">"),
        Binding("d", "devices", "Devices"),
        Binding("i", "incidents", "Incidents"),
        Binding("b", "breaches", "Breaches"),
        Binding("l", "event_log", "Events"),
    ]

    def __init__(self, store_path: str | Path, pipeline: Pipeline | None = None,
                 source: str = "", poll_s: float = 0.5) -> None:
        super().__init__()
        self.store_path = str(store_path)
        self.pipeline = pipeline
        self.poll_s = poll_s
        self.pipeline_status = pipeline.status if pipeline else PipelineStatus(source=source or self.store_path)
        self.store_status: queries.Status | None = None
        self._seen_key: tuple | None = None
        self._status_loader: Loader | None = None
        self._status_cache: tuple[int, queries.Status] | None = None
        self._reusable: dict[type, Screen] = {}
        self._frozen = False
        self.is_demo = isinstance(pipeline, DemoPipeline)
        if self.no_color:
            # NO_COLOR: no colour at all (Textual's default is a grey-scale rendering, which still
            # sends colour codes); selection and emphasis then rely on reverse and bold (app.tcss).
            # App._filters is a Textual internal: pyproject pins Textual to the tested minor release
            from textual.filter import Monochrome, NoColor

            self._filters = [NoColor() if isinstance(f, Monochrome) else f for f in self._filters]
            self.add_class("-no-color")

    # --- data access for workers (never called on the UI thread) ---
    def open_store(self) -> Store:
        # without --site ($PLANTWATCH_SITE) the console reads every site of the store
        site = os.environ.get("PLANTWATCH_SITE") or None
        return Store(self.store_path, readonly=True, site=site, all_sites=site is None)

    def status_snapshot(self) -> StatusView:
        return StatusView(self.pipeline_status, self.store_status)

    def _status_query(self, store: Store) -> queries.Status:
        """Runs in a worker on one long-lived connection: PRAGMA data_version tells whether any
        other connection committed since the last poll, so an idle store costs one pragma."""
        version = store.execute("PRAGMA data_version").fetchone()[0]
        cached = self._status_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        st = queries.status(store, count_sessions=False)
        self._status_cache = (version, st)
        return st

    # --- lifecycle ---
    def on_mount(self) -> None:
        from plantwatch.tui.screens.devices import DevicesScreen

        self._status_loader = Loader(self, self._status_query, self._got_status, persistent=True)
        self.push_screen(DevicesScreen())
        if self.pipeline is not None:
            self.pipeline.start(lambda st: self.post_message(PipelineUpdate(st)))
        self._status_loader.request()
        self.set_interval(self.poll_s, self._tick)

    def freeze_heap(self) -> None:
        """Called once the first device list is on screen: what exists then (Textual, the modules,
        the first snapshot) lives as long as the console, so the cyclic garbage collector stops
        scanning it. A full collection of it took 50-85 ms, a random stall in some key press."""
        if not self._frozen:
            self._frozen = True
            gc.freeze()
            self._warm_screens()

    def _warm_screens(self) -> None:
        """Import the other screens' modules off the UI thread while the user reads the device
        list; otherwise the first Enter, b or l pays for it (the device screen's charts ~17 ms)."""
        def work() -> None:
            for name in SCREEN_MODULES:
                importlib.import_module(name)
        self.run_worker(work, thread=True, exit_on_error=False, group="warm")

    def on_unmount(self) -> None:
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
        if self.pipeline is not None:
            self.pipeline.stop()
        if self._status_loader is not None:
            self._status_loader.close()

    def on_loaded(self, msg: Loaded) -> None:
        msg.loader.done(msg)

    def on_pipeline_update(self, msg: PipelineUpdate) -> None:
        self.pipeline_status = msg.status   # drawn on the next tick

    def _tick(self) -> None:
        if self._status_loader is not None:
            self._status_loader.request()

    def _got_status(self, st: queries.Status) -> None:
        self.store_status = st
        if not self.screen_stack:
            return    # a late result while the app shuts down
        for bar in self.screen.query(StatusBar):
            bar.show(self.status_snapshot())
        key = (st.devices, st.breaches, st.incidents, st.last_ts, st.learn_end,
               self.pipeline_status.generation, self.pipeline_status.phase)
        if key != self._seen_key:
            self._seen_key = key
            if isinstance(self.screen, BaseScreen):
                self.screen.refresh_data()

    # --- navigation ---
    def action_help(self) -> None:
        from plantwatch.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_devices(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def _push_unless_current(self, cls: type, *args) -> None:
        if type(self.screen) is cls:
            return
        self.push_reused(cls, *args)

    def push_reused(self, cls: type, *args) -> Screen:
        """Push a screen of `cls` showing `args`, reusing one kept instance when it is not on the
        stack already: composing and styling a screen's widgets costs more than a key press may
        (the device screen has ~40 widgets), re-pointing a mounted one costs nearly nothing.
        A reusable screen has `reuse(*args)`, which resets it to show the new subject."""
        cached = self._reusable.get(cls)
        if cached is not None and cached not in self.screen_stack and hasattr(cached, "reuse"):
            cached.reuse(*args)
            self.push_screen(cached)
            return cached
        scr = cls(*args)
        if cached is None and hasattr(scr, "reuse"):
            self._reusable[cls] = scr
            self.install_screen(scr, name=f"reusable-{cls.__name__}")   # kept mounted when popped
        self.push_screen(scr)
        return scr

    def open_device(self, device: str, site: str | None = None) -> None:
        """`site`: the device's site, in a console reading every site of a store holding several."""
        from plantwatch.tui.screens.device import DeviceScreen

        self.push_reused(DeviceScreen, device, site)

    def open_event_log(self, filter_text: str = "", day_ts: int | None = None) -> None:
        """`day_ts`: times without a date in the filter are on that day (the incident's)."""
        from plantwatch.tui.screens.eventlog import EventLogScreen

        self.push_reused(EventLogScreen, filter_text, day_ts)

    def action_incidents(self) -> None:
        from plantwatch.tui.screens.incidents import IncidentsScreen

        self._push_unless_current(IncidentsScreen)

    def action_breaches(self) -> None:
        from plantwatch.tui.screens.breaches import BreachesScreen

        self._push_unless_current(BreachesScreen)

    def action_event_log(self) -> None:
        from plantwatch.tui.screens.eventlog import EventLogScreen

        self._push_unless_current(EventLogScreen)

    # --- demo controls ---
    DEMO_ACTIONS = frozenset({"pause", "faster", "slower", "finish"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The replay keys exist (and show in the footer) only in the demo."""
        if action in self.DEMO_ACTIONS:
            return self.is_demo
        return True

    def action_pause(self) -> None:
        if self.pipeline is not None:
            paused = self.pipeline.toggle_pause()
            if paused is not None:
                self.notify("replay paused (space resumes)" if paused else "replay resumed", timeout=2)

    def action_faster(self) -> None:
        if self.pipeline is not None:
            self.pipeline.faster()

    def action_slower(self) -> None:
        if self.pipeline is not None:
            self.pipeline.slower()

    def action_finish(self) -> None:
        if self.pipeline is not None:
            self.pipeline.finish()


def make_app(store: str | Path, pipeline: Pipeline | None = None, *, source: str = "",
             poll_s: float = 0.5) -> PlantwatchApp:
    """The console over `store`. With a pipeline, the store is created (schema applied) first and
    the pipeline fills it while the console runs; without one, the store is only read."""
    if pipeline is not None:
        Store(store).close()
    return PlantwatchApp(store, pipeline, source=source, poll_s=poll_s)
