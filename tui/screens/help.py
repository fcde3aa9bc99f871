"""Help (`?`): every key of the console."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("Everywhere", [
        ("?", "this help"), ("Escape", "back to the previous screen (closes this help)"),
        ("d", "devices (the first screen)"), ("i", "incidents"), ("b", "breach log"),
        ("l", "event log (all connections)"), ("q", "quit"),
        ("Tab / Shift+Tab", "move between tables and the filter bar"),
        ("arrows PgUp PgDn", "move in a table (Home/End: first/last row)"), ("Enter", "open the selected row"),
    ]),
    ("Demo replay", [
        ("space", "pause / resume"), ("+ / -", "replay faster / slower"), (">", "play the rest of the replay at once"),
    ]),
    ("Devices", [
        ("/", "filter: zone:ot role:plc score:>0.5 port:102 new:yes vendor:siemens model:6ES7 fw:V3.2 serial:, plus free text"),
        ("s / r", "next sort column / reverse (or click a header)"),
        ("Escape", "clear the filter"),
    ]),
    ("Device", [
        ("e", "event log of this device"), ("p", "peers table (Enter: event log for that peer's port)"),
        ("c", "connections table (Enter: decode the first packet)"),
    ]),
    ("Incidents and incident", [("a / r", "acknowledge / mark resolved"),
                                ("f", "false positive (asks for a note)"), ("u", "undo the last state change")]),
    ("Incident", [("o", "open the main device"), ("e", "event log of the device during the incident"),
                  ("t", "event log of every connection at the incident's time"),
                  ("v", "the timeline's breach in full (explanation, numbers, evidence)"),
                  ("x", "export the incident's bundle to ./incident-ID")]),
    ("Event log", [
        ("/", "filter: device:IP-or-name port:102 proto:s7comm state:failed model:scan since:13:00 "
              "until:14:00 (a time without a date is on the incident's or breach's day, else the "
              "newest row's)"),
        ("] / [", "next older / newer page"), ("} / {", "oldest / newest page"),
        ("Enter", "the packet view of the connection's first operation or data"),
    ]),
    ("Breaches", [("/", "filter: a model id, title or word (model:scan), "
                        "state:new|ack|resolved|fp|accepted|suppressed|window|all"),
                  ("Enter / o", "open the device"),
                  ("v", "the breach in full: explanation, numbers, baseline, evidence"),
                  ("e", "the connections cited as evidence"),
                  ("p", "the packet view of the first evidence packet"),
                  ("a / r", "acknowledge / mark resolved"), ("f", "false positive (asks for a note)"),
                  ("u", "undo the last state change (an accepted breach: withdraw the acceptance)"),
                  ("A", "accept as normal (asks why): its keys stop firing, incidents are re-scored"),
                  ("w", "maintenance window, prefilled from the breach (planned work: scored low, no incident)")]),
    ("Packet", [("n / p", "next / previous packet of the session"),
                ("f", "the session's ICS operations (Enter: that packet)"), ("h", "hide / show the hex pane")]),
]


def help_text() -> Text:
    t = Text(end="")
    for i, (section, keys) in enumerate(KEYS):
        if i:
            t.append("\n")
        t.append(section + "\n", style="bold underline")
        for k, what in keys:
            t.append(f"  {k:<18}", style="bold")
            t.append(what + "\n")
    return t


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text("plantwatch — keys", style="bold"))
            yield Static(help_text())

    def action_dismiss(self) -> None:
        self.dismiss()
