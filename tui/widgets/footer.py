"""The key footer: the essential keys first, as many as the width holds, rebuilt only when the
keys it shows change.

Order: the screen's own keys (Back first), then Help, Quit and the screens (Incidents, Breaches,
Events, Devices), then the demo's replay keys. On a narrow terminal the keys that do not fit are
left out from the end, except Help, which always shows (it lists every key).

Textual's Footer recomposes all its key widgets whenever the screen's bindings *may* have changed:
on every screen switch and focus change. Styling ~15 new widgets each time cost tens of
milliseconds per key press on the device and event-log screens; here the footer compares what
it would show with what it shows and leaves itself alone when they are the same.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # Textual pinned in pyproject

_APP_ORDER = ("help", "quit", "incidents", "breaches", "event_log", "devices",
              "pause", "faster", "slower", "finish")


class KeyFooter(Footer):
    _shown: tuple | None = None

    def _ordered(self) -> list[tuple]:
        """(binding, enabled, tooltip, key display) of the keys to show, essential first."""
        screen_keys, app_keys, seen = [], [], set()
        for node, b, enabled, tooltip in self.screen.active_bindings.values():
            if not b.show or b.action in seen:
                continue
            seen.add(b.action)
            item = (b, enabled, tooltip, self.app.get_key_display(b))
            (app_keys if node is self.app else screen_keys).append(item)
        app_keys.sort(key=lambda it: _APP_ORDER.index(it[0].action) if it[0].action in _APP_ORDER
                      else len(_APP_ORDER))
        screen_keys.sort(key=lambda it: it[0].action != "back")
        keys = screen_keys + app_keys
        width = self.size.width or self.app.size.width
        need = [len(kd) + len(b.description) + 3 for b, _e, _t, kd in keys]
        help_w = next((n for (b, *_), n in zip(keys, need, strict=True) if b.action == "help"), 0)
        out, used = [], 0
        for item, n in zip(keys, need, strict=True):
            is_help = item[0].action == "help"
            room = width - used - (0 if is_help or any(k[0].action == "help" for k in out) else help_w)
            if n <= room or is_help:
                out.append(item)
                used += n
        return out

    def _keys(self) -> tuple:
        return tuple((b.key, kd, b.description, b.action, enabled, tooltip)
                     for b, enabled, tooltip, kd in self._ordered())

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        keys = self._ordered()
        self.styles.grid_size_columns = max(1, len(keys))
        for b, enabled, tooltip, kd in keys:
            yield FooterKey(b.key, kd, b.description, b.action, disabled=not enabled,
                            tooltip=tooltip).data_bind(compact=Footer.compact)

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True   # Footer's internal flag (Textual pinned in pyproject)
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached:
            return
        keys = self._keys()
        if keys != self._shown:
            self._shown = keys
            await self.recompose()
