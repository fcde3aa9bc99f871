"""The bundled demo plant: learn and incident captures, its zones file and the attack's ground truth.

Shipped as package data of `plantwatch.demo_data`; `files()` is where they are, installed or not.
`generate.py` rebuilds them byte for byte from the plant simulator in plantwatch.core.synth.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LEARN = "learn.pcapng.gz"
INCIDENT = "incident.pcapng.gz"
ZONES = "zones.toml"
GROUND_TRUTH = "ground_truth.json"


def files() -> Path:
    """The folder holding the demo's files (a real directory: the wheel is installed unzipped)."""
    return Path(str(resources.files(__name__)))
