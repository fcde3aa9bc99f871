"""The analyst's loop on the command line: `triage` (states of breaches and incidents, and what
triage covered), `accept` / `accepted` (keys taken as normal), `rules` (the allow-rules file) and
`window` (maintenance windows). Each change re-scores the store at once; a sensor writing the same
store applies it from its next batch. Core modules are imported inside the commands (fast --help)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plantwatch.tui.cli_support import STORE, fail, note

if TYPE_CHECKING:
    from plantwatch.core.store.database import Store
    from plantwatch.core.store.triage_apply import ApplyReport

STORE_ENV = "PLANTWATCH_STORE"


def _store_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store_path", type=STORE, required=True,
                        envvar=STORE_ENV, help=f"The store (default: ${STORE_ENV}).")(f)


@contextmanager
def _open(store_path: Path) -> Iterator[Store]:
    """The store for a triage change; a problem is one line and exit status 2."""
    from plantwatch.core.detection.triage.rules import RulesError
    from plantwatch.core.store.database import Store, StoreError

    if isinstance(store_path, Path) and not store_path.exists():   # (a PostgreSQL DSN is a str)
        fail(f"{store_path}: no such store")
    try:
        with Store(store_path) as st:
            yield st
    except (StoreError, RulesError) as e:
        fail(str(e))


def _safe(text: object) -> str:
    from plantwatch.core.views.textsafe import printable

    return printable(str(text))


def _iso(ts: int | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _report(rep: ApplyReport) -> None:
    d = rep.as_dict()
    rules = "".join(f"; rule {_safe(k)}: {v}" for k, v in d["by_rule"].items())
    note(f"triage in force: {d['accepted']} breach(es) accepted, {d['suppressed']} suppressed by rules,"
         f" {d['in_window']} in maintenance windows; {d['incidents_rescored']} incident(s) re-scored,"
         f" {d['incidents_dissolved']} dissolved{rules}")


# --------------------------------------------------------------------------- states

@click.group("triage")
def triage() -> None:
    """States of breaches and incidents (new, acknowledged, resolved, false positive)."""


def _state_command(name: str, state: str, needs_note: bool, doc: str) -> None:
    @triage.command(name, help=doc)
    @click.argument("target_id", type=int)
    @click.option("--incident", is_flag=True, help="TARGET_ID is an incident, not a breach.")
    @click.option("--note", "note_text", default="", required=needs_note, help="Why (kept with the change).")
    @_store_option
    def cmd(target_id: int, incident: bool, note_text: str, store_path: Path) -> None:
        from plantwatch.core.store import triage as t

        with _open(store_path) as st:
            ch = t.set_state(st, "incident" if incident else "breach", target_id, state, note_text)
        click.echo(f"{ch.kind} {ch.target_id}: {ch.state} ({_safe(ch.user)}, {_iso(ch.at)})")


_state_command("ack", "acknowledged", False, "Acknowledge a breach (or --incident).")
_state_command("resolve", "resolved", False, "Mark a breach (or --incident) resolved.")
_state_command("false-positive", "false positive", True, "Mark a breach (or --incident) a false positive (--note).")
_state_command("reopen", "new", False, "Set a breach (or --incident) back to new.")


@triage.command("undo")
@click.argument("target_id", type=int)
@click.option("--incident", is_flag=True, help="TARGET_ID is an incident, not a breach.")
@_store_option
def undo(target_id: int, incident: bool, store_path: Path) -> None:
    """Take back the last state change of a breach (or --incident); the history keeps both."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        ch = t.undo_state(st, "incident" if incident else "breach", target_id)
    click.echo(f"{ch.kind} {ch.target_id}: {ch.state} ({_safe(ch.note)})")


@triage.command("history")
@click.argument("target_id", type=int)
@click.option("--incident", is_flag=True, help="TARGET_ID is an incident, not a breach.")
@_store_option
def history(target_id: int, incident: bool, store_path: Path) -> None:
    """Every state change of a breach (or --incident): time, user, state, note."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        rows = t.history(st, "incident" if incident else "breach", target_id)
    for h in rows:
        click.echo(f"{_iso(h.at)}  {_safe(h.user)}  {h.state}  {_safe(h.note)}")
    if not rows:
        click.echo("no state changes (new)")


@triage.command("list")
@click.option("--state", "state", default=None,
              help="new, ack, resolved, fp, accepted, suppressed, window or all (default: those in force).")
@click.option("--incidents", is_flag=True, help="List incidents with their state instead.")
@_store_option
def list_cmd(state: str | None, incidents: bool, store_path: Path) -> None:
    """Breaches (newest first) or incidents, with their state."""
    from plantwatch.core.views.console.breaches import STATE_WORDS, breaches
    from plantwatch.core.views.console.incidents import incidents as incident_list
    from plantwatch.core.views.queries import fmt_ts

    if state is not None and state.lower() not in STATE_WORDS:
        fail(f"--state {state}: not a state (new ack resolved fp accepted suppressed window all)")
    with _open(store_path) as st:
        if incidents:
            for i in incident_list(st).rows:
                note_text = f"  ({_safe(i.triage_note)})" if i.triage_note else ""
                click.echo(f"{i.incident_id}  {i.score:.2f}  {i.state:<14}  {_safe(i.title)}{note_text}")
            return
        snap = breaches(st, state=STATE_WORDS[state.lower()] if state else None, limit=100_000)
    for b in snap.rows:
        word = b.triage or b.state
        click.echo(f"{b.breach_id}  {fmt_ts(b.first_ts)}  {b.score:.2f}  {word:<14}  {b.model_id}  {b.device}")
    note(f"{snap.total} breach(es)")


@triage.command("suppressed")
@click.option("--kind", type=click.Choice(["accepted", "suppressed", "window"]), help="Only this kind.")
@click.option("--json", "as_json", is_flag=True, help="As one JSON list.")
@_store_option
def suppressed_cmd(kind: str | None, as_json: bool, store_path: Path) -> None:
    """Breaches triage covers (accepted, suppressed by a rule, inside a window), and what covers them."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        rows = t.suppressed(st, kind)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['breach_id']}  {_iso(r['first_ts'])}  {r['model']}  {r['device']}  {r['disposition']}"
                   f" by {_safe(r['label'])} (score as detected {r['detected_score']})")
    note(f"{len(rows)} breach(es)")


# --------------------------------------------------------------------------- acceptances

@click.command("accept")
@click.argument("breach_id", type=int)
@click.option("--why", required=True, help="Why this is normal (kept with the acceptance).")
@_store_option
def accept(breach_id: int, why: str, store_path: Path) -> None:
    """Accept what made a breach as normal: the same keys stop firing, incidents are re-scored."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        a, rep = t.accept(st, breach_id, why)
    keys = ", ".join(f"{k}={'|'.join(_safe(x) for x in v)}" for k, v in a.keys)
    click.echo(f"acceptance {a.accept_id}: {a.model} by {a.actor} to {', '.join(a.targets) or '-'}"
               + (f" ({keys})" if keys else ""))
    _report(rep)


@click.command("accepted")
@click.option("--withdraw", "withdraw_id", type=int, help="Withdraw this acceptance.")
@click.option("--all", "show_all", is_flag=True, help="Include withdrawn acceptances.")
@click.option("--json", "as_json", is_flag=True, help="As one JSON list.")
@_store_option
def accepted(withdraw_id: int | None, show_all: bool, as_json: bool, store_path: Path) -> None:
    """List acceptances (who, when, why), or withdraw one."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        if withdraw_id is not None:
            _report(t.withdraw_acceptance(st, withdraw_id))
            return
        rows = t.acceptances(st, include_withdrawn=show_all)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for a in rows:
        gone = f"  withdrawn {_iso(a['withdrawn_at'])} by {_safe(a['withdrawn_by'])}" if a["withdrawn_at"] else ""
        click.echo(f"{a['accept_id']}  {a['model']}  {a['actor']} -> {', '.join(a['targets']) or '-'}"
                   f"  {_safe(a['user'])} {_iso(a['at'])}  why: {_safe(a['why'])}{gone}")
    if not rows:
        click.echo("no acceptances")


# --------------------------------------------------------------------------- rules

@click.group("rules")
def rules() -> None:
    """The allow-rules file (TOML, see README "Tuning and triage")."""


def load_rules_file(st: Store, path: Path) -> None:
    """Keep a rules file in the store and apply it to every stored breach (also `analyze --rules`)."""
    from plantwatch.core.store import triage as t

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{path}: cannot read the rules file ({e.__class__.__name__})")
    from plantwatch.core.detection.triage.rules import RulesError

    try:
        rid, parsed, rep = t.load_rules(st, str(path), text)
    except RulesError as e:
        fail(f"{path}: {e}")
    note(f"rules file {path} loaded ({len(parsed)} rule(s)): {rep.suppressed} stored breach(es) suppressed")
    _report(rep)


@rules.command("load")
@click.argument("path", type=click.Path(path_type=Path))
@_store_option
def rules_load(path: Path, store_path: Path) -> None:
    """Load a rules file (it replaces the one in force) and apply it to the stored breaches."""
    with _open(store_path) as st:
        load_rules_file(st, path)


@rules.command("check")
@click.argument("path", type=click.Path(path_type=Path))
def rules_check(path: Path) -> None:
    """Check a rules file without loading it."""
    from plantwatch.core.detection.triage.rules import RulesError, parse_rules

    try:
        parsed = parse_rules(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{path}: cannot read the rules file ({e.__class__.__name__})")
    except RulesError as e:
        fail(f"{path}: {e}")
    click.echo(f"{path}: {len(parsed)} rule(s): {', '.join(_safe(r.name) for r in parsed)}")


@rules.command("show")
@_store_option
def rules_show(store_path: Path) -> None:
    """The rules files loaded into the store, and the text of the one in force."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        sets = t.rulesets(st)
        live = st.execute("SELECT body FROM rulesets WHERE withdrawn_at IS NULL AND site = ?", (st.site,)).fetchone()
    for r in sets:
        state = f"withdrawn {_iso(r['withdrawn_at'])}" if r["withdrawn_at"] else "in force"
        click.echo(f"{r['ruleset_id']}  {_safe(r['path'])}  {_safe(r['user'])} {_iso(r['at'])}  {state}")
    if live:
        from plantwatch.core.views.textsafe import printable

        click.echo("")
        for line in live[0].splitlines():
            click.echo(printable(line, limit=1000))
    elif not sets:
        click.echo("no rules file loaded")


@rules.command("withdraw")
@_store_option
def rules_withdraw(store_path: Path) -> None:
    """Withdraw the rules file in force (its breaches are no longer suppressed)."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        _report(t.withdraw_rules(st))


# --------------------------------------------------------------------------- maintenance windows

def _when(text: str) -> int:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{text!r} is not a time like 2026-03-07T06:00 (UTC)")
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for x in values for v in x.split(",") if v.strip()]


@click.group("window")
def window() -> None:
    """Maintenance windows: planned work that is labelled, scored low and opens no incident."""


@window.command("add")
@click.option("--name", required=True, help="What the work is.")
@click.option("--from", "start", required=True, help="Start, ISO 8601 (UTC unless an offset is given).")
@click.option("--to", "end", required=True, help="End, ISO 8601.")
@click.option("--devices", multiple=True, required=True,
              help="Devices doing the work: addresses, CIDRs or name globs (comma separated or repeated).")
@click.option("--targets", multiple=True, help="Devices worked on (default: any).")
@click.option("--classes", multiple=True, help="Operation classes expected: READ, DISCOVER, ACTION, REPROGRAM.")
@click.option("--note", "note_text", default="", help="A note kept with the window.")
@_store_option
def window_add(name: str, start: str, end: str, devices: tuple[str, ...], targets: tuple[str, ...],
               classes: tuple[str, ...], note_text: str, store_path: Path) -> None:
    """Declare a window, ahead of time or after the fact."""
    from plantwatch.core.store import triage as t

    cls = [c.upper() for c in _split(classes)]
    bad = [c for c in cls if c not in ("READ", "DISCOVER", "ACTION", "REPROGRAM")]
    if bad:
        fail(f"unknown operation class {bad[0]!r} (READ, DISCOVER, ACTION, REPROGRAM)")
    with _open(store_path) as st:
        w, rep = t.add_window(st, name, _when(start), _when(end), _split(devices), _split(targets), cls, note_text)
    click.echo(f"window {w.window_id}: {_safe(w.name)} {_iso(w.start_ts)} .. {_iso(w.end_ts)}")
    _report(rep)


@window.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include withdrawn windows.")
@_store_option
def window_list(show_all: bool, store_path: Path) -> None:
    """The maintenance windows."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        rows = t.windows(st, include_withdrawn=show_all)
    for w in rows:
        click.echo(f"{w['window_id']}  {_safe(w['name'])}  {_iso(w['start_ts'])} .. {_iso(w['end_ts'])}"
                   f"  by {', '.join(map(_safe, w['devices']))} on {', '.join(map(_safe, w['targets'])) or 'any'}"
                   f"  classes {', '.join(w['classes']) or 'any'}  ({_safe(w['user'])})")
    if not rows:
        click.echo("no maintenance windows")


@window.command("withdraw")
@click.argument("window_id", type=int)
@_store_option
def window_withdraw(window_id: int, store_path: Path) -> None:
    """Withdraw a maintenance window."""
    from plantwatch.core.store import triage as t

    with _open(store_path) as st:
        _report(t.withdraw_window(st, window_id))


COMMANDS = (triage, accept, accepted, rules, window)

__all__ = ["COMMANDS", "load_rules_file"]
