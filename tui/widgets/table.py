"""A DataTable whose rows are replaced from snapshots without losing the cursor.

Rows come as (key, cells). When the keys are the same as shown, only changed cells are updated.
Otherwise the table is rebuilt in chunks: the first screenful at once, the rest a chunk per turn
of the event loop, so a 5,000-row list never holds the UI thread (keys are handled between
chunks). A newer snapshot cancels a rebuild still in progress.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable

FIRST_CHUNK = 60      # a screenful and a half
CHUNK = 100           # Textual measures every cell of a new row: ~100 rows per turn keeps keys snappy


class SnapshotTable(DataTable):
    DEFAULT_CSS = """
    SnapshotTable { height: 1fr; }
    """

    def __init__(self, columns: Sequence[tuple[str, str] | tuple[str, str, int]], **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self._columns = list(columns)
        self._keys: list[str] = []        # keys of the snapshot being shown (maybe still filling)
        self._cells: dict[str, tuple] = {}
        self._gen = 0
        self._filled = 0                  # rows of the current snapshot already in the table

    def on_mount(self) -> None:
        for key, label, *width in self._columns:
            self.add_column(label, key=key, width=width[0] if width else None)

    @property
    def keys(self) -> list[str]:
        """Keys of the rows in the table now, top to bottom."""
        return self._keys[: self._filled]

    @property
    def populating(self) -> bool:
        return self._filled < len(self._keys)

    @property
    def selected_key(self) -> str | None:
        if self.cursor_row < 0 or self.cursor_row >= min(self._filled, len(self._keys)):
            return None
        return self._keys[self.cursor_row]

    def show_rows(self, rows: Sequence[tuple]) -> None:
        """`rows`: (key, cells) or (key, signature, cells); a row whose signature (default: its
        cells) equals the one shown is left alone. Build the cells off the UI thread if you can."""
        rows = [(r[0], r[1], r[2]) if len(r) == 3 else (r[0], tuple(r[1]), r[1]) for r in rows]
        keys = [k for k, _, _ in rows]
        if keys == self._keys and not self.populating:
            self._update_in_place(rows)
            return
        selected = self.selected_key
        row_before = self.cursor_row
        scroll_y = self.scroll_y
        self._gen += 1
        self.clear()
        self._keys = keys
        self._cells = {k: sig for k, sig, _ in rows}
        self._filled = 0
        if row_before <= 0 or selected not in self._cells:
            target = 0 if row_before <= 0 else min(row_before, max(len(keys) - 1, 0))
        else:
            target = keys.index(selected)   # a cursor never moved stays on the top row
        self._fill(rows, self._gen, FIRST_CHUNK, target, scroll_y)

    def _fill(self, rows, gen: int, n: int, target: int, scroll_y: float) -> None:
        if gen != self._gen:
            return                           # a newer snapshot took over
        start = self._filled
        end = min(len(rows), start + n)
        for key, _, cells in rows[start:end]:
            self.add_row(*cells, key=key)
        self._filled = end
        if start <= target < end or (end == len(rows) and rows):
            self.move_cursor(row=min(target, end - 1), animate=False, scroll=False)
            self.scroll_to(y=scroll_y, animate=False, immediate=True)
            self.move_cursor(row=self.cursor_row, animate=False, scroll=True)
        if end < len(rows):
            self.call_after_refresh(self._fill, rows, gen, CHUNK, target, scroll_y)

    def _update_in_place(self, rows) -> None:
        cols = [c[0] for c in self._columns]
        for key, sig, cells in rows:
            if self._cells.get(key) == sig:
                continue
            for col, value in zip(cols, cells, strict=False):
                if self.get_cell(key, col) != value:
                    self.update_cell(key, col, value, update_width=True)
            self._cells[key] = sig
