"""The analyst's keys on a screen that lists breaches (or incidents): acknowledge, resolve,
false positive (asks for a note), undo, accept as normal (asks why) and maintenance window.

Each change is written by a worker thread on its own short-lived writable connection, in one
`BEGIN IMMEDIATE` transaction (plantwatch.core.store.triage), so a sensor writing the same store
makes it wait at most SQLite's busy timeout, and the UI thread never waits on SQLite. The
console's readers stay read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from textual.binding import Binding

from plantwatch.core.detection.triage.facts import MODEL_CLASSES
from plantwatch.core.store import triage
from plantwatch.core.store.database import Store
from plantwatch.tui.screens.triage_modal import AskScreen, WindowScreen

NS = 1_000_000_000
# the footer has room at 80 columns for the frequent ones; help (?) lists them all
STATE_KEYS = [
    Binding("a", "ack", "Ack"),
    Binding("f", "false_positive", "False pos"),
    Binding("u", "undo", "Undo"),
    Binding("r", "resolve", "Resolved", show=False),
]
BREACH_KEYS = [*STATE_KEYS, Binding("A", "accept", "Accept"), Binding("w", "window", "Window", show=False)]
# on a screen whose footer is already full: the keys work and help lists them
QUIET_STATE_KEYS = [Binding(b.key, b.action, b.description, show=False) for b in STATE_KEYS]


def _minute_text(ts: int, up: bool) -> str:
    m = ts // (60 * NS) + (1 if up and ts % (60 * NS) else 0)
    return datetime.fromtimestamp(m * 60, tz=UTC).strftime("%Y-%m-%dT%H:%M")


def _when(text: str) -> int:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp()) * NS + t.microsecond * 1000


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


class TriageKeys:
    """Mixin for a BaseScreen: `triage_kind` is "breach" or "incident"; `_triage_selected()`
    returns the selected row (with breach_id or incident_id)."""

    triage_kind = "breach"
    triage_writes = 0   # changes written so far (tests wait on it)

    def _triage_selected(self):  # noqa: ANN202 - a BreachRow or an IncidentRow
        return self._selected()

    def _target_id(self) -> int | None:
        row = self._triage_selected()
        if row is None:
            return None
        return row.breach_id if self.triage_kind == "breach" else row.incident_id

    def _write(self, work: Callable[[Store], str]) -> None:
        path = self.app.store_path
        # a console reading every site writes a breach's or incident's triage at its own site
        site = getattr(self._triage_selected(), "site", "") or None

        def run() -> None:
            msg, err = None, None
            try:
                with Store(path, site=site) as st:
                    msg = work(st)
            except Exception as e:  # noqa: BLE001 - shown on screen as one line
                err = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.app.call_from_thread(self._written, msg, err)

        self.run_worker(run, thread=True, exit_on_error=False, group="triage")

    def _written(self, msg: str | None, err: str | None) -> None:
        if err is not None:
            self.notify(err, severity="error", markup=False)
        else:
            self.notify(msg or "", markup=False)
        self.triage_writes += 1
        self.refresh_data()

    def _set(self, state: str, note: str = "") -> None:
        tid = self._target_id()
        if tid is None:
            return
        kind = self.triage_kind

        def work(st: Store) -> str:
            ch = triage.set_state(st, kind, tid, state, note)
            return f"{kind} {tid}: {ch.state}"
        self._write(work)

    def action_ack(self) -> None:
        self._set("acknowledged")

    def action_resolve(self) -> None:
        self._set("resolved")

    def action_false_positive(self) -> None:
        if self._target_id() is None:
            return

        def got(note: str | None) -> None:
            if note:
                self._set("false positive", note)
        self.app.push_screen(AskScreen(f"False positive: why? (kept with the {self.triage_kind})",
                                       "e.g. test PLC on the bench"), got)

    def action_undo(self) -> None:
        """Undo the last state change; on a breach accepted as normal, withdraw its acceptance."""
        tid = self._target_id()
        if tid is None:
            return
        kind = self.triage_kind
        accepted = kind == "breach" and getattr(self._triage_selected(), "triage", "") == "accepted"

        def work(st: Store) -> str:
            if accepted:
                r = st.execute("SELECT ref FROM breach_triage WHERE breach_id = ? AND site = ?"
                               " AND disposition = 'accepted'",
                               (tid, st.site)).fetchone()
                if r is not None:
                    rep = triage.withdraw_acceptance(st, int(r[0]))
                    return f"acceptance {r[0]} withdrawn; {rep.accepted} breach(es) still accepted"
            ch = triage.undo_state(st, kind, tid)
            return f"{kind} {tid}: back to {ch.state}"
        self._write(work)

    def action_accept(self) -> None:
        b = self._triage_selected()
        if b is None or self.triage_kind != "breach":
            return

        def got(why: str | None) -> None:
            if not why:
                return

            def work(st: Store) -> str:
                a, rep = triage.accept(st, b.breach_id, why)
                return (f"accepted as normal ({a.model} by {a.actor}); "
                        f"{rep.accepted} breach(es) accepted, {len(rep.rescored)} incident(s) re-scored, "
                        f"{len(rep.dissolved)} dissolved")
            self._write(work)
        self.app.push_screen(AskScreen(f"Accept as normal: {b.model} by {b.device}. Why?",
                                       "e.g. vendor remote support, contract 4711"), got)

    def action_window(self) -> None:
        """A window after the fact, prefilled from the selected breach; with none, an empty form
        (ahead of time)."""
        if self.triage_kind != "breach":
            return
        b = self._triage_selected()
        values = {} if b is None else {
            "name": f"planned work by {b.device}", "start": _minute_text(b.first_ts or 0, False),
            "end": _minute_text(b.last_ts or 0, True), "devices": b.device,
            "targets": " ".join(b.devices[1:]), "classes": MODEL_CLASSES.get(b.model_id, "")}

        def got(v: dict | None) -> None:
            if not v:
                return
            try:
                start, end = _when(v["start"]), _when(v["end"])
            except ValueError:
                self.notify("a window needs times like 2026-03-07T06:00 (UTC)", severity="error", markup=False)
                return

            def work(st: Store) -> str:
                w, rep = triage.add_window(st, v["name"] or "maintenance", start, end, _words(v["devices"]),
                                           _words(v["targets"]), [c.upper() for c in _words(v["classes"])])
                return f"window {w.window_id} declared; {rep.window} breach(es) inside maintenance windows"
            self._write(work)
        self.app.push_screen(WindowScreen(values), got)


__all__ = ["TriageKeys", "STATE_KEYS", "BREACH_KEYS", "QUIET_STATE_KEYS"]
