"""Small dialogs of the analyst's loop: one line of text (a false positive's note, why something
is normal), and a maintenance window prefilled from a breach. Enter confirms, Escape cancels."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from plantwatch.tui.widgets.text import plain

WINDOW_FIELDS = (("name", "What the work is"), ("start", "From (UTC, 2026-03-07T06:00)"),
                 ("end", "To (UTC)"), ("devices", "Devices doing it (addresses, CIDRs, name globs)"),
                 ("targets", "Targets (empty: any)"), ("classes", "Operation classes (READ DISCOVER ACTION REPROGRAM)"))


class AskScreen(ModalScreen[str | None]):
    """Asks for one line; dismisses with the text (None when cancelled or left empty)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, placeholder: str = "") -> None:
        super().__init__()
        self.prompt = prompt
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self.prompt, limit=300))
            yield Input(placeholder=self.placeholder, id="answer")
            yield Static(Text("Enter: save   Escape: cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class WindowScreen(ModalScreen[dict | None]):
    """A maintenance window's fields, prefilled; Enter on the last field (or any) saves."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__()
        self.values = values

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text("Maintenance window (planned work: labelled, scored low, no incident)", style="bold"))
            for key, label in WINDOW_FIELDS:
                yield Static(label)
                yield Input(value=self.values.get(key, ""), id=f"w-{key}")
            yield Static(Text("Tab: next field   Enter: save   Escape: cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#w-name", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss({k: self.query_one(f"#w-{k}", Input).value.strip() for k, _ in WINDOW_FIELDS})

    def action_cancel(self) -> None:
        self.dismiss(None)


__all__ = ["AskScreen", "WindowScreen", "WINDOW_FIELDS"]
