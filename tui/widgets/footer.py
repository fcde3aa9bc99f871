"""The key footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes all its key widgets whenever the screen's bindings *may* have changed:
on every screen switch and focus change. Styling ~15 new widgets each time cost tens of
milliseconds per key press on the device and event-log screens; here the footer compares what
it would show with what it shows and leaves itself alone when they are the same.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    _shown: tuple | None = None

    def _keys(self) -> tuple:
        return tuple((b.key, b.key_display, b.description, b.action, b.group, enabled, tooltip)
                     for _node, b, enabled, tooltip in self.screen.active_bindings.values() if b.show)

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True   # Footer's internal flag (Textual pinned in pyproject)
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached:
            return
        keys = self._keys()
        if keys != self._shown:
            self._shown = keys
            await self.recompose()
