"""The `plantwatch` command line. Textual is imported only by the commands that open the console."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from plantwatch.core.capture.limits import (
    AddressSpaceTooSmall,
    address_space_limit,
    fit_address_space,
    limit_text,
)

# Before polars is imported: under `ulimit -v`, thread pools and malloc arenas sized to fit it.
try:
    fit_address_space()
except AddressSpaceTooSmall as _e:
    click.echo(f"plantwatch: {_e}", err=True)
    sys.exit(2)

from plantwatch.core.capture.errors import CaptureError  # noqa: E402
from plantwatch.core.detection.errors import ConfigError  # noqa: E402
from plantwatch.core.inventory.errors import ZonesError  # noqa: E402
from plantwatch.core.store.errors import StoreError  # noqa: E402
from plantwatch.tui.cli_export import (  # noqa: E402
    export,
    open_forwarder,
    relocate_cmd,
    report_cmd,
    report_sent,
    syslog_options,
)
from plantwatch.tui.cli_support import (  # noqa: E402
    STORE,
    check_store,
    fail,
    load_models,
    load_zones,
    print_detection,
    progress_bar,
    say_wait,
    store_file,
    store_label,
)
from plantwatch.tui.cli_triage import COMMANDS as TRIAGE_COMMANDS  # noqa: E402
from plantwatch.tui.cli_triage import load_rules_file  # noqa: E402
from plantwatch.tui.cli_vulns import vulns  # noqa: E402

if TYPE_CHECKING:
    from plantwatch.core.store.database import Store

# Line breaks to str.splitlines, JavaScript and many log tools, left raw by json.dumps: escaped so
# one --jsonl record stays one line for them too (inside JSON strings, where alone they can occur)
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _out_of_memory() -> str:
    limit = address_space_limit()
    if limit is None:
        return "out of memory"
    return f"out of memory under {limit_text(limit)}: raise it or analyse fewer captures at once"


def _restore_env(var: str, old: str | None):  # noqa: ANN202
    def restore() -> None:
        if old is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old
    return restore


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(package_name="plantwatch")
@click.option("--site", envvar="PLANTWATCH_SITE", help="The site a command reads and writes in a shared "
              "store (default: 'default'); the console without it shows every site.")
@click.option("--sensor", "sensor_name", envvar="PLANTWATCH_SENSOR",
              help="Sensor name written on every row (default: this host's name).")
@click.pass_context
def main(ctx: click.Context, site: str | None, sensor_name: str | None) -> None:
    """plantwatch: learn the pattern of life of a plant network and explain what deviates.

    With no command: the console on the configured store ($PLANTWATCH_STORE), or the demo when
    no store is configured.
    """
    for var, value in (("PLANTWATCH_SITE", site), ("PLANTWATCH_SENSOR", sensor_name)):
        if value:   # read by every Store this command opens; put back when it ends
            ctx.call_on_close(_restore_env(var, os.environ.get(var)))
            os.environ[var] = value
    if ctx.invoked_subcommand is None:
        store = _configured_store()
        if store is not None:
            ctx.invoke(console, store_path=store)
        else:
            ctx.invoke(demo)


@main.command()
@click.argument("captures", nargs=-1, type=click.Path(path_type=Path))
@click.option("--zeek", "zeek_dirs", multiple=True, type=click.Path(path_type=Path),
              help="A directory of Zeek logs (TSV or JSON, gzip or not) to score instead of captures "
                   "(repeat the option).")
@click.option("--zones", "zones_file", type=click.Path(path_type=Path), help="Zones TOML file.")
@click.option("--store", "store_path", type=STORE,
              help="SQLite store to create or append to (default: a temporary one).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print the report as JSON lines, one record each.")
@click.option("--learn", "learn", multiple=True, type=click.Path(path_type=Path),
              help="Capture(s) of normal traffic to learn the baseline from first (repeat the option).")
@click.option("--models", "models_file", type=click.Path(path_type=Path),
              help="TOML file overriding detection thresholds (defaults: core/data/models.toml).")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path),
              help="Allow-rules TOML, kept in the store and applied to every breach (README: Tuning and triage).")
@syslog_options
def analyze(captures: tuple[Path, ...], zeek_dirs: tuple[Path, ...], zones_file: Path | None,
            store_path: Path | None, as_json: bool, as_jsonl: bool, learn: tuple[Path, ...],
            models_file: Path | None, rules_file: Path | None, syslog_url: str | None,
            syslog_format: str) -> None:
    """Analyse capture files (pcap, pcapng, .gz, or directories of them) with no console.

    Detection compares with the baseline in the store (learned with `plantwatch learn` or
    --learn); with none, models that need history report "learning" and the rest still fire.
    """
    if as_json and as_jsonl:
        fail("--json and --jsonl are exclusive")
    if bool(captures) == bool(zeek_dirs):
        fail("give capture files, or Zeek log directories with --zeek (not both)")
    # the pipeline (polars, numpy) only once the arguments are known to be usable
    from plantwatch.core.pipeline.ingest import Ingest
    from plantwatch.core.pipeline.zeek.reader import ZeekLogError
    from plantwatch.core.store.database import Store
    from plantwatch.core.views import report

    siem = open_forwarder(syslog_url, syslog_format)
    try:
        zones = load_zones(zones_file)
        models = load_models(models_file)
        warn = lambda m: click.echo(f"plantwatch: warning: {m}", err=True)  # noqa: E731
        with store_file(store_path, "analyze.sqlite") as path, Store(path, on_wait=say_wait) as store:
            store.throwaway = store_path is None   # read once for the report, then removed
            if siem is not None:
                siem.prime(store)
            if learn and zeek_dirs:  # with --zeek, --learn names Zeek log directories too
                Ingest(store, zones, mode="learn", models=models).run_zeek(learn, on_warning=warn)
            elif learn:
                with progress_bar() as progress:
                    Ingest(store, zones, mode="learn", models=models).run(
                        learn, on_progress=progress, on_warning=warn)
            if zeek_dirs:
                result = Ingest(store, zones, mode="detect", models=models).run_zeek(zeek_dirs, on_warning=warn)
            else:
                with progress_bar() as progress:
                    result = Ingest(store, zones, mode="detect", models=models).run(
                        captures, on_progress=progress, on_warning=warn)
            if rules_file is not None:
                load_rules_file(store, rules_file)
            # the per-device and per-source lists are read from the store as they are printed
            # (core/views/report_stream.py): memory does not grow with what the store holds
            data = report.build(store, lazy=True)
            if siem is not None:
                report_sent(siem, siem.forward(store))
            for info in result.captures:
                if info.note:
                    click.echo(f"plantwatch: {info.path}: {info.note}", err=True)
                elif info.skipped:
                    click.echo(f"plantwatch: {info.path}: already in the store; not counted again", err=True)
            _print_report(store, data, as_json, as_jsonl)
    except (CaptureError, StoreError, ZonesError, ConfigError, ZeekLogError) as e:
        fail(str(e))
    except MemoryError:
        fail(_out_of_memory())


def _print_report(store: Store, data: dict, as_json: bool, as_jsonl: bool) -> None:
    from plantwatch.core.views import report, report_stream

    if as_json:
        report_stream.write_json(data, lambda text: click.echo(text, nl=False))
    elif as_jsonl:
        for rec in report.jsonl_records(data):
            click.echo(json.dumps(rec, ensure_ascii=False).translate(_LINE_BREAKS))
    else:
        from plantwatch.tui.summary import SUMMARY_ROWS, print_summary

        data = report_stream.capped(store, data, SUMMARY_ROWS)
        print_summary(data)
        print_detection(data)


@main.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--store", "store_path", type=STORE, required=True,
              help="SQLite store to create or append to; it keeps the baseline.")
@click.option("--zones", "zones_file", type=click.Path(path_type=Path), help="Zones TOML file.")
@click.option("--models", "models_file", type=click.Path(path_type=Path),
              help="TOML file overriding detection thresholds.")
def learn(captures: tuple[Path, ...], store_path: Path, zones_file: Path | None,
          models_file: Path | None) -> None:
    """Learn the pattern of life from capture(s) of normal traffic into a store (no detection)."""
    from plantwatch.core.pipeline.ingest import Ingest
    from plantwatch.core.store.database import Store

    try:
        zones = load_zones(zones_file)
        models = load_models(models_file)
        with Store(store_path, on_wait=say_wait) as store:
            with progress_bar() as progress:
                result = Ingest(store, zones, mode="learn", models=models).run(
                    captures, on_progress=progress,
                    on_warning=lambda m: click.echo(f"plantwatch: warning: {m}", err=True))
            site = (store.site,)
            meta = dict(store.execute("SELECT name, value FROM baseline_meta WHERE site = ?", site).fetchall())
            mat = dict(store.execute("SELECT maturity, COUNT(*) FROM baseline_devices WHERE site = ? GROUP BY maturity",
                                     site).fetchall())
    except (CaptureError, StoreError, ZonesError, ConfigError) as e:
        fail(str(e))
    for info in result.captures:
        if info.note:
            click.echo(f"plantwatch: {info.path}: {info.note}", err=True)
        elif info.skipped:
            click.echo(f"plantwatch: {info.path}: already in the store; not learned again", err=True)
    click.echo(f"learned {result.packets:,} packets, {result.sessions:,} sessions; baseline "
               f"{meta.get('maturity', 'learning')} with {float(meta.get('hours', 0)):.1f} h of traffic; "
               f"devices: {mat.get('mature', 0)} mature, {mat.get('learning', 0)} learning")


@main.command("eval")
@click.argument("captures", nargs=-1, type=click.Path(path_type=Path))
@click.option("--truth", "truth_file", type=click.Path(path_type=Path), required=True,
              help="Ground-truth JSON (demo_data/ground_truth.json format).")
@click.option("--store", "store_path", type=STORE,
              help="A store already analysed (or to fill with CAPTURES; default: a temporary one).")
@click.option("--learn", "learn", multiple=True, type=click.Path(path_type=Path),
              help="Capture(s) to learn from before detecting on CAPTURES.")
@click.option("--zones", "zones_file", type=click.Path(path_type=Path), help="Zones TOML file.")
@click.option("--models", "models_file", type=click.Path(path_type=Path),
              help="TOML file overriding detection thresholds.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON.")
def eval_(captures: tuple[Path, ...], truth_file: Path, store_path: Path | None, learn: tuple[Path, ...],
          zones_file: Path | None, models_file: Path | None, as_json: bool) -> None:
    """Compare the breaches in a store with a ground truth: per step, which model detected it."""
    from plantwatch.core.pipeline.ingest import Ingest
    from plantwatch.core.store.database import Store
    from plantwatch.core.views import eval as evaluation

    if not captures and store_path is None:
        fail("give CAPTURES to analyse, or --store of an analysed store")
    try:
        truth = evaluation.load_truth(truth_file)
        zones = load_zones(zones_file)
        models = load_models(models_file)
        with store_file(store_path, "eval.sqlite") as path, Store(path, on_wait=say_wait) as store:
            if learn:
                Ingest(store, zones, mode="learn", models=models).run(learn)
            if captures:
                Ingest(store, zones, mode="detect", models=models).run(captures)
            result = evaluation.evaluate(store, truth)
    except (CaptureError, StoreError, ZonesError, ConfigError, evaluation.TruthError) as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(evaluation.render(result))


# --------------------------------------------------------------------------- the console

STORE_ENV = "PLANTWATCH_STORE"


def _configured_store() -> Path | None:
    import os

    value = os.environ.get(STORE_ENV)
    return Path(value) if value else None


def _run_console(app) -> None:  # noqa: ANN001 - a textual App, imported lazily
    app.run()
    if app.return_code not in (None, 0):
        sys.exit(app.return_code)


def _run_with_pipeline(store_path: Path, pipeline, join_s: float = 5.0) -> None:  # noqa: ANN001
    """The console on `store_path` while `pipeline` (a worker thread) fills it; stopped after."""
    from plantwatch.tui.app import make_app

    try:
        _run_console(make_app(store_path, pipeline))
    finally:
        pipeline.stop()
        pipeline.join(join_s)


@main.command()
@click.option("--speed", type=float, default=2000.0, show_default=True,
              help="Replay speed: packet-time seconds per wall-clock second.")
@click.option("--store", "store_path", type=STORE,
              help="Keep the demo's store in this file (default: a temporary one).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Directory of the demo captures (default: the bundled demo_data/).")
@click.option("--models", "models_file", type=click.Path(path_type=Path),
              help="TOML file overriding detection thresholds.")
def demo(speed: float, store_path: Path | None, data_dir: Path | None, models_file: Path | None) -> None:
    """Learn from the bundled plant capture, then replay the incident as if live."""
    from plantwatch.tui.live import DEMO_DIR, DemoPipeline

    data_dir = data_dir or DEMO_DIR
    missing = DemoPipeline.missing(data_dir)
    if missing:
        fail(f"the demo captures are missing ({', '.join(missing)}); "
              "generate them with: python demo_data/generate.py")

    if isinstance(store_path, Path) and store_path.exists():
        fail(f"{store_path}: already exists; the demo needs a new store")
    if not speed > 0:
        fail(f"--speed {speed:g}: give a replay speed above 0")
    try:
        models = load_models(models_file)
        with store_file(store_path, "demo.sqlite") as path:
            _run_with_pipeline(path, DemoPipeline(path, data_dir, speed=speed, models=models))
    except (StoreError, ZonesError, ConfigError) as e:
        fail(str(e))


@main.command("open")
@click.argument("captures", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--learn", "learn", multiple=True, type=click.Path(path_type=Path),
              help="Capture(s) of normal traffic to learn from first (repeat the option).")
@click.option("--zones", "zones_file", type=click.Path(path_type=Path), help="Zones TOML file.")
@click.option("--store", "store_path", type=STORE,
              help="SQLite store to create or append to (default: a temporary one).")
@click.option("--models", "models_file", type=click.Path(path_type=Path),
              help="TOML file overriding detection thresholds.")
def open_(captures: tuple[Path, ...], learn: tuple[Path, ...], zones_file: Path | None,
          store_path: Path | None, models_file: Path | None) -> None:
    """Analyse capture files and browse the result in the console."""
    from plantwatch.core.capture.files import check_captures
    from plantwatch.tui.live import FilesPipeline

    try:
        check_captures(list(captures) + list(learn))   # fail before the console on a bad file
        zones = load_zones(zones_file)
        models = load_models(models_file)
        with store_file(store_path, "open.sqlite") as path:
            _run_with_pipeline(path, FilesPipeline(path, captures, learn, zones, models=models))
    except (CaptureError, StoreError, ZonesError, ConfigError) as e:
        fail(str(e))


@main.command()
@click.option("--store", "store_path", type=STORE,
              help=f"The store a sensor is writing (default: ${STORE_ENV}).")
def console(store_path: Path | None) -> None:
    """Attach read-only to a store another process is filling; refreshes as it grows."""
    store_path = store_path or _configured_store()
    if store_path is None:
        fail(f"which store? give --store FILE or set {STORE_ENV}")
    check_store(store_path)
    from plantwatch.tui.app import make_app

    _run_console(make_app(store_path, None, source=f"store: {store_label(store_path)}", poll_s=1.0))


@main.command()
@click.option("-i", "--interface", "iface", required=True, help="Interface to capture on (a SPAN port).")
@click.option("--zones", "zones_file", type=click.Path(path_type=Path), help="Zones TOML file.")
@click.option("--store", "store_path", type=STORE,
              help="SQLite store to create or append to (default: a temporary one).")
@click.option("--models", "models_file", type=click.Path(path_type=Path),
              help="TOML file overriding detection thresholds.")
def live(iface: str, zones_file: Path | None, store_path: Path | None, models_file: Path | None) -> None:
    """Capture on an interface (through dumpcap) and watch it live."""
    from plantwatch.core.capture.dumpcap import CaptureSetupError
    from plantwatch.tui.live import LivePipeline, check_capture

    try:
        zones = load_zones(zones_file)
        models = load_models(models_file)
    except (ZonesError, ConfigError) as e:
        fail(str(e))
    try:
        check_capture(iface)
    except CaptureSetupError as e:
        fail(f"cannot capture on {iface}: {e}")
    try:
        with store_file(store_path, "live.sqlite") as path:
            # the captured packets stay beside the store, for the packet decode
            spool = path.parent / (path.name + ".captures")
            pipeline = LivePipeline(path, iface, zones, spool=spool, models=models)
            _run_with_pipeline(path, pipeline, join_s=10)
    except StoreError as e:
        fail(str(e))


@main.command()
@click.option("-i", "--interface", "iface", help="Interface to capture on (a SPAN port).")
@click.option("--store", "store_path", type=STORE, required=True,
              help="SQLite store to create or append to (0600); the console attaches to it.")
@click.option("--ring-dir", "ring_dir", type=click.Path(path_type=Path),
              help="Directory of dumpcap's ring files (0700; default: STORE's directory/ring).")
@click.option("--ring-size", "ring_size", type=click.FloatRange(min=0.001), default=100.0,
              show_default=True, help="Size of one ring file, MB.")
@click.option("--ring-files", "ring_files", type=click.IntRange(min=2), default=10, show_default=True,
              help="Number of ring files kept (the evidence the packet view reads).")
@click.option("--buffer", "buffer_dir", type=click.Path(path_type=Path),
              help="With a PostgreSQL store: where runs wait while the server is unreachable "
                   "(default: RING_DIR.buffer beside the ring).")
@click.option("--zones", "zones_file", type=click.Path(path_type=Path), help="Zones TOML file.")
@click.option("--filter", "capture_filter", help="Capture filter (BPF), passed to dumpcap.")
@click.option("--follow-only", is_flag=True, hidden=True,
              help="Do not capture: follow the ring files already in --ring-dir.")
@click.option("--exit-idle", type=float, default=None, hidden=True,
              help="With --follow-only: stop after this many seconds with nothing new.")
@click.option("--run-seconds", type=float, default=None, hidden=True)
@click.option("--zeek", "zeek_dir", type=click.Path(path_type=Path),
              help="Score the logs a Zeek cluster writes in this directory (following its "
                   "rotation) instead of capturing.")
@syslog_options
def sensor(iface: str | None, store_path: Path, ring_dir: Path | None, ring_size: float,
           ring_files: int, buffer_dir: Path | None, zones_file: Path | None, capture_filter: str | None,
           follow_only: bool,
           exit_idle: float | None, run_seconds: float | None, zeek_dir: Path | None,
           syslog_url: str | None, syslog_format: str) -> None:
    """Headless capture and analysis for a sensor box (runs until SIGTERM/SIGINT).

    dumpcap writes a ring of pcapng files; they are decoded as they grow and every batch is
    committed to the store, so `plantwatch console --store STORE` sees new devices and breaches
    within seconds. A restart resumes where it stopped. Logs go to stderr.
    """
    from plantwatch.core.pipeline.sensor import SensorConfig, run_sensor

    if zeek_dir is not None:
        from plantwatch.core.pipeline.zeek.follow import follow

        if iface or follow_only:
            fail("--zeek reads logs: no -i/--follow-only with it")
        if not zeek_dir.is_dir():
            fail(f"{zeek_dir}: not a directory of Zeek logs")
        try:
            zones = load_zones(zones_file)
        except ZonesError as e:
            fail(str(e))
        siem = open_forwarder(syslog_url, syslog_format)
        sys.exit(follow(store_path, zeek_dir, zones=zones, exit_idle_s=exit_idle, run_seconds=run_seconds,
                        siem=siem))
    if not follow_only and not iface:
        fail("give the interface to capture on: -i IFACE")
    try:
        zones = load_zones(zones_file)
    except ZonesError as e:
        fail(str(e))
    cfg = SensorConfig(exit_idle_s=exit_idle)
    if run_seconds is not None:
        cfg.run_seconds = run_seconds
    if ring_dir is None and not isinstance(store_path, Path):
        fail("--ring-dir is needed with a PostgreSQL store (where to keep the capture ring)")
    ring_dir = ring_dir or store_path.resolve().parent / "ring"
    siem = open_forwarder(syslog_url, syslog_format)
    sys.exit(run_sensor(store_path, ring_dir, iface=None if follow_only else iface,
                        ring_size_mb=ring_size, ring_files=ring_files, zones=zones, config=cfg,
                        capture_filter=capture_filter, siem=siem, buffer_dir=buffer_dir))


main.add_command(export)
main.add_command(report_cmd)
main.add_command(relocate_cmd)
for _cmd in TRIAGE_COMMANDS:
    main.add_command(_cmd)
main.add_command(vulns)


if __name__ == "__main__":  # pragma: no cover
    main()
