"""Detection's configuration error, light to import (the CLI catches it before polars loads)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A models file cannot be used. str() is one line naming the file."""
