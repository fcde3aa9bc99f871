"""The store's error, light to import (the CLI catches it before polars loads)."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot be opened or written. str() is one line naming the file."""


class StoreUnreachable(StoreError):
    """A database server store cannot be reached (down, restarting, network): worth retrying."""
