"""The detection models: one small module each, run in the order of `MODULES`, and their config.

Thresholds live in core/data/models.toml (one table per model name, plus [baseline],
[scoring] and [incidents]); `load_config(path)` overlays a user's file on the defaults.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from plantwatch.core.detection.models import (
    admin_rdp,
    data_volume,
    external_connectivity,
    failed_ics,
    failed_internal,
    ics_connectivity,
    ics_protocol,
    it_to_ics,
    new_action,
    new_device,
    new_discover,
    reprogram,
    ssl_no_sni,
    ssl_self_signed,
)
from plantwatch.core.detection.models.base import Model

# New Device runs last: it reads the breaches of the others.
MODULES = (failed_internal, failed_ics, it_to_ics, ics_connectivity, ics_protocol, new_discover,
           new_action, reprogram, admin_rdp, ssl_no_sni, ssl_self_signed, data_volume,
           external_connectivity, new_device)
MODELS: dict[str, Model] = {m.MODEL.name: m.MODEL for m in MODULES}


class ConfigError(ValueError):
    """A models file cannot be used. str() is one line naming the file."""


def _merge(base: dict, over: dict, where: str, source: str) -> dict:
    out = dict(base)
    for k, v in over.items():
        if k not in base:
            raise ConfigError(f"{source}: unknown key '{where}{k}'")
        if isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise ConfigError(f"{source}: '{where}{k}' must be a table")
            out[k] = _merge(base[k], v, f"{where}{k}.", source)
        else:
            want = (int, float) if isinstance(base[k], float) else type(base[k])
            if isinstance(v, bool) or not isinstance(v, want):
                raise ConfigError(f"{source}: '{where}{k}' must be {type(base[k]).__name__}")
            out[k] = float(v) if isinstance(base[k], float) else v
    return out


def default_config() -> dict[str, Any]:
    text = resources.files("plantwatch.core").joinpath("data/models.toml").read_text()
    return tomllib.loads(text)


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    cfg = default_config()
    if path is None:
        return cfg
    p = str(path)
    try:
        with open(p, "rb") as f:
            over = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{p}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return _merge(cfg, over, "", p)


__all__ = ["MODULES", "MODELS", "Model", "load_config", "default_config", "ConfigError"]
