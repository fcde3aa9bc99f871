"""The detection models: one small module each, run in the order of `MODULES`, and their config.

Thresholds live in core/data/models.toml (one table per model id, plus [baseline], [scoring] and
[incidents]); `load_config(path)` overlays a user's file on the defaults. A user's file keyed by
model titles (the keys before ids) still loads: its tables are moved to the ids and one
deprecation note is given (`on_note`, else a `ConfigDeprecation` warning; core never prints).
"""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from plantwatch.core.detection.errors import ConfigError  # noqa: F401 (re-exported)
from plantwatch.core.detection.models import (
    action_rate,
    admin_rdp,
    arp_sweep,
    beacon,
    connection_rate,
    data_volume,
    external_connectivity,
    failed_ics,
    failed_internal,
    ics_connectivity,
    ics_protocol,
    identity_changed,
    it_connection_rate,
    it_to_ics,
    new_action,
    new_device,
    new_discover,
    reprogram,
    role_contradiction,
    ssl_no_sni,
    ssl_self_signed,
)
from plantwatch.core.detection.models.base import Model

# New Device runs last: it reads the breaches of the others.
MODULES = (failed_internal, failed_ics, arp_sweep, it_to_ics, ics_connectivity, ics_protocol,
           new_discover, new_action, action_rate, connection_rate, it_connection_rate, reprogram, identity_changed, role_contradiction,
           admin_rdp, ssl_no_sni, ssl_self_signed, data_volume, external_connectivity, beacon, new_device)
MODELS: dict[str, Model] = {m.MODEL.id: m.MODEL for m in MODULES}
BY_TITLE: dict[str, str] = {m.title: m.id for m in MODELS.values()}   # title -> id (old keys)


def title_of(model: str) -> str:
    """The display title of a model id (an unknown id, or an old stored title, as it is)."""
    m = MODELS.get(model)
    return m.title if m else model


def model_id(name: str) -> str | None:
    """The id of a model given by id or by title (exactly), or None."""
    if name in MODELS:
        return name
    return BY_TITLE.get(name)


def matching_models(text: str) -> list[str]:
    """Ids of the models whose id or title contains `text` (case-insensitive): what the console's
    and the CLI's filters accept."""
    t = text.strip().lower()
    return [m.id for m in MODELS.values() if t in m.id.lower() or t in m.title.lower()]




class ConfigDeprecation(FutureWarning):
    """A models file uses a deprecated form (tables keyed by model title)."""


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


def _by_id(over: dict[str, Any], source: str) -> tuple[dict[str, Any], str | None]:
    """Tables keyed by a model title moved to the model's id, and the note to give if any was."""
    old = [k for k in over if k in BY_TITLE]
    if not old:
        return over, None
    out: dict[str, Any] = {}
    for k, v in over.items():
        key = BY_TITLE.get(k, k)
        if key in out:
            raise ConfigError(f"{source}: '{k}' and '{key}' are the same model")
        out[key] = v
    return out, (f"{source}: model tables keyed by title are deprecated, use the ids: "
                 + ", ".join(f"'{k}' -> '{BY_TITLE[k]}'" for k in old))


def load_config(path: str | Path | None = None,
                on_note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The defaults overlaid with the file at `path`. `on_note` receives one-line deprecation
    notes about the file (default: a ConfigDeprecation warning)."""
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
    over, note = _by_id(over, p)
    merged = _merge(cfg, over, "", p)
    if note is not None:  # only for a file that loads: a bad one gets its one-line error alone
        if on_note is not None:
            on_note(note)
        else:
            warnings.warn(note, ConfigDeprecation, stacklevel=2)
    return merged


__all__ = ["MODULES", "MODELS", "BY_TITLE", "Model", "load_config", "default_config", "ConfigError",
           "ConfigDeprecation", "title_of", "model_id", "matching_models"]
