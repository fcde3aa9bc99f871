"""The house rules of plantwatch.core, checked on the source:

- core never depends on the console: no textual, rich or plantwatch.tui, directly or transitively;
- core is one package per pipeline stage, and a stage imports only the stages before it;
- nothing anywhere imports the bare top-level `core` or `tui` (they install as plantwatch.*).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
FORBIDDEN = ("textual", "rich", "plantwatch.tui", "tui")
STAGES = ("capture", "decode", "flows", "inventory", "detection", "store", "views", "pipeline", "synth")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_core_sources_import_no_console_library() -> None:
    offenders = [f"{p.relative_to(ROOT)} imports {name}"
                 for p in sorted(CORE.rglob("*.py")) for name in _imports(p) if _forbidden(name)]
    assert not offenders, "\n".join(offenders)


def test_core_is_grouped_by_stage() -> None:
    loose = sorted(p.name for p in CORE.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules outside a stage package: {loose}"
    packages = sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(STAGES)
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((CORE / stage / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"core/{stage}/__init__.py must state the package's one job"


def test_stages_import_only_earlier_stages() -> None:
    upward = set()
    for p in sorted(CORE.rglob("*.py")):
        rel = p.relative_to(ROOT)
        if len(rel.parts) < 3:
            continue
        stage = rel.parts[1]
        for name in _imports(p):
            parts = name.split(".")
            if parts[:2] != ["plantwatch", "core"] or len(parts) < 3 or parts[2] not in STAGES:
                continue
            if STAGES.index(parts[2]) > STAGES.index(stage):
                upward.add((rel.as_posix(), parts[2]))
    assert not upward, f"imports pointing up the pipeline: {sorted(upward)}"


def test_no_bare_core_or_tui_imports() -> None:
    offenders = [f"{p.relative_to(ROOT)} imports {name}"
                 for d in ("core", "tui", "tests", "bench", "demo_data", "plantwatch")
                 for p in sorted((ROOT / d).rglob("*.py"))
                 for name in _imports(p) if name.split(".")[0] in ("core", "tui")]
    assert not offenders, "\n".join(offenders)


def test_importing_all_of_core_loads_no_console_library() -> None:
    modules = sorted(
        "plantwatch." + ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in CORE.rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich') "
        "or m.startswith('plantwatch.tui')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "", f"importing core loaded: {out}"


def test_help_and_argument_errors_load_no_heavy_library() -> None:
    """`plantwatch --help` and a usage error answer before numpy, polars or textual are imported."""
    code = (
        "import sys\n"
        "from plantwatch.tui.cli import main\n"
        "for argv in (['--help'], ['analyze', '--help'], ['analyze', '--no-such-option']):\n"
        "    try:\n"
        "        main.main(argv, prog_name='plantwatch', standalone_mode=True)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'polars', 'textual', 'pyshark'})\n"
        "print('heavy:' + ','.join(heavy), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "Usage: plantwatch" in out.stdout
    assert "No such option '--no-such-option'" in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "heavy:"
