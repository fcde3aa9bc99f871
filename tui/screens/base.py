"""What every console screen shares: data loaded off the UI thread, the status bar and footer.

A `Loader` runs one query (a function of a read-only Store) in a worker thread and delivers the
immutable result back on the UI thread through a message. A request made while a load is
running does not start a second one: it marks the loader dirty, and when the running load
delivers, one more load runs with the latest query. So a burst of store updates collapses into
at most one extra load, and the UI thread never waits on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static

from plantwatch.tui.widgets.footer import KeyFooter
from plantwatch.tui.widgets.status import StatusBar
from plantwatch.tui.widgets.table import SnapshotTable
from plantwatch.tui.widgets.text import plain


class Loaded(Message):
    def __init__(self, loader: Loader, result: Any, error: str | None) -> None:
        super().__init__()
        self.loader = loader
        self.result = result
        self.error = error


class Loader:
    def __init__(self, owner: Widget, query: Callable[[Any], Any],
                 deliver: Callable[[Any], None],
                 on_error: Callable[[str], None] | None = None, persistent: bool = False) -> None:
        self.owner = owner
        self.persistent = persistent   # keep one read-only connection across loads (never concurrent)
        self._store = None
        self.query = query
        self.deliver = deliver
        self.on_error = on_error
        self.running = False
        self.pending = False
        self.loads = 0
        self.requests = 0

    def request(self, query: Callable[[Any], Any] | None = None) -> None:
        if query is not None:
            self.query = query
        self.requests += 1
        if self.running:
            self.pending = True
            return
        self._start()

    def _start(self) -> None:
        self.running = True
        query = self.query
        app = self.owner.app

        def work() -> None:
            result, error = None, None
            try:
                if self.persistent:
                    if self._store is None:
                        self._store = app.open_store()
                    result = query(self._store)
                else:
                    store = app.open_store()
                    try:
                        result = query(store)
                    finally:
                        store.close()
            except Exception as e:  # noqa: BLE001 - shown on screen as one line
                error = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.owner.post_message(Loaded(self, result, error))

        self.owner.run_worker(work, thread=True, exit_on_error=False, group="load")

    def done(self, msg: Loaded) -> None:
        self.running = False
        self.loads += 1
        if msg.error is not None:
            if self.on_error is not None:
                self.on_error(msg.error)
        else:
            self.deliver(msg.result)
        if self.pending:
            self.pending = False
            self._start()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def idle(self) -> bool:
        return not self.running and not self.pending


class Message1(Static):
    """A one-line notice inside a screen (empty states, errors): always plain text."""

    DEFAULT_CSS = """
    Message1 { height: auto; color: $text-muted; padding: 0 1; }
    Message1.error { color: $error; }
    """

    def say(self, text: str, error: bool = False) -> None:
        self.update(plain(text, limit=500))
        self.set_class(error, "error")
        self.display = bool(text)


class BaseScreen(Screen):
    """Body + status bar + footer; `refresh_data()` reloads what the screen shows."""

    BINDINGS = [Binding("escape", "back", "Back", show=True)]
    TITLE_TEXT = ""

    def __init__(self) -> None:
        super().__init__()
        self.loaders: list[Loader] = []

    def compose(self) -> ComposeResult:
        yield from self.compose_body()
        yield StatusBar()
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:  # pragma: no cover - overridden
        yield from ()

    def loader(self, query: Callable[[Any], Any], deliver: Callable[[Any], None],
               persistent: bool = True) -> Loader:
        """The loads share one read-only connection, closed when the screen goes: no connect per
        key press, SQLite's page cache stays warm, and a query may keep a cache that is valid for
        that connection (e.g. keyed by PRAGMA data_version)."""
        ld = Loader(self, query, deliver, self.show_error, persistent=persistent)
        self.loaders.append(ld)
        return ld

    def on_unmount(self) -> None:
        for ld in self.loaders:
            if not ld.running:
                ld.close()

    def on_loaded(self, msg: Loaded) -> None:
        msg.stop()
        msg.loader.done(msg)

    def show_error(self, text: str) -> None:
        self.notify(text, severity="error", markup=False)

    def refresh_data(self) -> None:
        """Called when the store changed; screens re-request their loaders."""

    def on_screen_resume(self) -> None:
        bar = self.query(StatusBar)
        if bar:
            bar.first().show(self.app.status_snapshot())
        if any(ld.running for ld in self.loaders):
            return   # a load started in on_mount or reuse() is still running: it brings fresh data
        self.refresh_data()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    @property
    def loading_done(self) -> bool:
        """Every loader asked for something has delivered it (one never asked, e.g. the event
        log's count when every match is shown, does not hold this up)."""
        return all(ld.idle and (ld.loads > 0 or ld.requests == 0) for ld in self.loaders)


class FilterBarMixin:
    """Screens with a filter Input (#filter) above a SnapshotTable: `/` focuses the filter, and
    Escape in the filter returns to the table instead of leaving the screen."""

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_back(self) -> None:
        if self.query_one("#filter", Input).has_focus:
            self.query_one(SnapshotTable).focus()
        else:
            super().action_back()
