"""A table whose rows are replaced from snapshots without losing the cursor, drawn line by line.

Textual's DataTable measures every cell of every row it holds and keeps per-row bookkeeping, so
filling it with 5,000 devices held the UI thread for seconds. This table keeps the snapshot as a
plain list and renders only the lines on screen (Textual's line API): replacing 5,000 rows costs a
list assignment, a key press costs one screenful of lines. A row's cells may be given as a
callable, built the first time the row is drawn or read, so a worker need not format rows nobody
scrolls to. Columns have fixed widths when the screen gives one; the others fit their widest
cell, measured over the rows given eagerly (or the first rows of lazy ones).

It looks and behaves like a row-cursor DataTable (same component classes, so the theme and
app.tcss style it alike) and posts DataTable.RowSelected / DataTable.HeaderSelected, so screens
handle it with `on_data_table_row_selected` / `on_data_table_header_selected`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

MEASURE_LAZY = 200     # auto-width columns of lazily built rows fit the first rows only
CACHE_LINES = 400      # rendered lines kept (a few screenfuls)
LAST_COLUMN_MIN = 20   # of a last column wider than that, this much showing is enough

Cells = Sequence[Any] | Callable[[], Sequence[Any]]


SITE_SEP = "\x1f"   # between site and id in a row key (neither holds a control character)


def row_key(ident: object, site: str, many_sites: bool) -> str:
    """A row's key: its id, and its site when the store holds several (ids repeat across sites)."""
    return f"{site}{SITE_SEP}{ident}" if many_sites else str(ident)


def _text(cell: Any) -> Text:
    if isinstance(cell, Text):
        return cell
    return Text("" if cell is None else str(cell), end="")   # never markup


class SnapshotTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "datatable--header", "datatable--cursor",
    }
    DEFAULT_CSS = """
    SnapshotTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        &:focus {
            background-tint: $foreground 5%;
            & > .datatable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .datatable--header {
                background-tint: $foreground 5%;
            }
        }
        & > .datatable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .datatable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first_row", "Top", show=False),
        Binding("end,ctrl+end", "last_row", "Bottom", show=False),
    ]

    def __init__(self, columns: Sequence[tuple[str, str] | tuple[str, str, int]],
                 drop: Sequence[str] = (), **kw) -> None:
        """`drop`: column keys, least useful first, hidden in that order while the columns are
        wider than the table (an 80-column terminal keeps what matters instead of cutting the
        right-hand columns off)."""
        super().__init__(**kw)
        self._columns = [(c[0], c[1], c[2] if len(c) > 2 else None) for c in columns]
        self._drop = [k for k in drop if any(c[0] == k for c in self._columns)]
        self._hidden: set[int] = set()
        self._off: set[int] = set()      # columns the screen switched off (switch_column)
        self._col_index = {key: i for i, (key, _, _) in enumerate(self._columns)}
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._sigs: list[Any] = []
        self._cells: list[Cells] = []
        self._widths = [max(len(label), w or 0) for _, label, w in self._columns]
        self._given: dict[str, int] = {}
        self._cursor = 0
        self._lines: dict[tuple[int, bool], Strip] = {}
        self._header: Strip | None = None
        self._frame: tuple[Style, Style, Style] | None = None

    def _on_mount(self, event: events.Mount) -> None:
        self._resize_virtual()

    def _on_resize(self, event: events.Resize) -> None:
        if self._fit():
            self._invalidate()
            self._resize_virtual()
        # a table given its cursor while hidden or not laid out yet shows it once it has a size
        self.call_after_refresh(self._scroll_cursor_into_view)

    def _fit(self) -> bool:
        """Hide the `drop` columns needed to fit the width; True when that changed."""
        avail = self.size.width
        hidden: set[int] = set(self._off)
        if avail > 0 and self._drop:
            def need() -> int:
                # the last column shown may run off the edge (free text such as facts)
                shown = [w + 2 for i, w in enumerate(self._widths) if i not in hidden]
                return sum(shown[:-1]) + min(shown[-1], LAST_COLUMN_MIN) if shown else 0

            for key in self._drop:
                if need() <= avail:
                    break
                hidden.add(self._col_index[key])
        changed = hidden != self._hidden
        self._hidden = hidden
        return changed

    def switch_column(self, key: str, on: bool) -> None:
        """Show or hide a column by the screen's choice (the Site column shows only while the
        store holds more than one site); the columns dropped for width are worked out again."""
        i = self._col_index[key]
        off = self._off - {i} if on else self._off | {i}
        if off == self._off:
            return
        self._off = off
        self._fit()
        self._invalidate()
        self._resize_virtual()

    @property
    def shown_columns(self) -> list[str]:
        """Keys of the columns drawn now (the others were dropped for width)."""
        return [key for i, (key, _, _) in enumerate(self._columns) if i not in self._hidden]

    # --- what the screens and tests read ---
    @property
    def keys(self) -> list[str]:
        """Keys of the rows in the table now, top to bottom."""
        return self._keys

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def populating(self) -> bool:
        return False     # a snapshot is shown whole as soon as it is given

    @property
    def cursor_row(self) -> int:
        return self._cursor if self._keys else 0

    @property
    def selected_key(self) -> str | None:
        return self._keys[self._cursor] if 0 <= self._cursor < len(self._keys) else None

    def get_cell(self, row_key: str, column_key: str) -> Text:
        return _text(self._row_cells(self._index[row_key])[self._col_index[column_key]])

    # --- data ---
    def show_rows(self, rows: Sequence[tuple], widths: dict[str, int] | None = None) -> None:
        """`rows`: (key, cells) or (key, signature, cells); cells may be a callable returning them
        (a row's signature then defaults to the callable itself). `widths` sets the width of
        columns the screen measured itself (e.g. in its worker, over every row).
        When every key and signature equals the ones shown, nothing is redrawn."""
        keys = [r[0] for r in rows]
        cells = [r[2] if len(r) == 3 else r[1] for r in rows]
        sigs = [r[1] if len(r) == 3 else (c if callable(c) else tuple(c)) for r, c in zip(rows, cells, strict=True)]
        widths = widths or {}
        if keys == self._keys and sigs == self._sigs and widths == self._given:
            return
        selected, row_before = self.selected_key, self.cursor_row
        self._keys, self._sigs, self._cells = keys, sigs, cells
        self._index = {k: i for i, k in enumerate(keys)}
        if row_before <= 0 or selected not in self._index:
            # a cursor never moved stays on the top row; one whose row went keeps its place
            target = 0 if row_before <= 0 else min(row_before, max(len(keys) - 1, 0))
        else:
            target = self._index[selected]   # the cursor follows its row
        self._given = widths
        self._measure(widths)
        self._cursor = target
        self._invalidate()
        self._resize_virtual()
        self._scroll_cursor_into_view()

    def _row_cells(self, i: int) -> Sequence[Any]:
        c = self._cells[i]
        if callable(c):
            c = self._cells[i] = c()
        return c

    def _measure(self, given: dict[str, int]) -> None:
        widths = [max(len(label), given.get(key, w or 0)) for key, label, w in self._columns]
        auto = [i for i, (key, _, w) in enumerate(self._columns) if w is None and key not in given]
        if auto and self._cells:
            lazy = any(callable(c) for c in self._cells)
            for n in range(min(len(self._cells), MEASURE_LAZY) if lazy else len(self._cells)):
                cells = self._row_cells(n)
                for i in auto:
                    if i < len(cells):
                        w = _text(cells[i]).cell_len
                        if w > widths[i]:
                            widths[i] = w
        self._widths = widths
        self._fit()

    def _resize_virtual(self) -> None:
        width = sum(w + 2 for i, w in enumerate(self._widths) if i not in self._hidden)
        size = Size(width, len(self._keys) + 1)
        if size != self.virtual_size:
            relayout = size.height != self.virtual_size.height
            self.virtual_size = size
            self.refresh(layout=relayout)

    def _invalidate(self) -> None:
        self._lines.clear()
        self._header = None
        self._frame = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
        self._header = None
        self._frame = None

    def _on_focus(self, event: events.Focus) -> None:
        self._invalidate()

    def _on_blur(self, event: events.Blur) -> None:
        self._invalidate()

    # --- drawing ---
    def _line_text(self, cells: Sequence[Any]) -> Text:
        line = Text(end="", no_wrap=True)
        for i, w in enumerate(self._widths):
            if i in self._hidden:
                continue
            t = _text(cells[i]) if i < len(cells) else Text("")
            if t.cell_len > w:
                t = t.copy()
                t.truncate(w, overflow="ellipsis")
            line.append(" ")
            line.append_text(t)
            line.append(" " * (w - t.cell_len + 1))
        return line

    def _styles(self) -> tuple[Style, Style, Style]:
        """(base, header, cursor) styles, looked up once per repaint rather than once per line:
        each lookup walks the widget's ancestors, a few of them per line on every repaint."""
        if self._frame is None:
            self._frame = (self.rich_style, self.get_component_rich_style("datatable--header"),
                           self.get_component_rich_style("datatable--cursor"))
        return self._frame

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = None     # styles may have changed since the last repaint (focus, theme)
        return super().render_lines(crop)

    def _strip(self, text: Text, post: Style | None) -> Strip:
        segs = list(text.render(self.app.console))
        segs = list(Segment.apply_style(segs, self._styles()[0], post))
        return Strip(segs, text.cell_len)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base, header, cursor_style = self._styles()
        fill = base      # the header and the cursor row are painted across the whole width
        if y == 0:
            if self._header is None:
                labels = self._line_text([label for _, label, _ in self._columns])
                self._header = self._strip(labels, header)
            strip, fill = self._header, base + header
        else:
            row = scroll_y + y - 1
            if row >= len(self._keys):
                return Strip.blank(width, base)
            cursor = row == self._cursor
            post = cursor_style if cursor else None
            strip = self._lines.get((row, cursor))
            if strip is None:
                if len(self._lines) > CACHE_LINES:
                    self._lines.clear()
                text = self._line_text(self._row_cells(row))
                if cursor and self.app.has_class("-no-color"):
                    # without colour the cursor row is told apart by a marker, not only by reverse
                    text = Text(">", end="", no_wrap=True) + text[1:]
                strip = self._lines[(row, cursor)] = self._strip(text, post)
            if post is not None:
                fill = base + post
        return strip.crop_extend(scroll_x, scroll_x + width, fill)

    # --- cursor ---
    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, *, row: int | None = None, column: int | None = None,
                    animate: bool = False, scroll: bool = True) -> None:
        if row is None or not self._keys:
            return
        row = max(0, min(row, len(self._keys) - 1))
        if row != self._cursor:
            old, self._cursor = self._cursor, row
            self._refresh_row(old)
            self._refresh_row(row)
        if scroll:
            self._scroll_cursor_into_view()

    def _refresh_row(self, row: int) -> None:
        y = row - int(self.scroll_offset.y) + 1
        if 1 <= y < self.size.height:
            self.refresh_line(y)

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_offset.y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + self._page:
            self.scroll_to(y=self._cursor - self._page + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - self._page)

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + self._page)

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(DataTable.RowSelected(self, self._cursor, RowKey(key)))  # type: ignore[arg-type]

    def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:
            x, edge = offset.x + int(self.scroll_offset.x), 0
            for i, (w, (key, label, _)) in enumerate(zip(self._widths, self._columns, strict=True)):
                if i in self._hidden:
                    continue
                edge += w + 2
                if x < edge:
                    self.post_message(DataTable.HeaderSelected(
                        self, ColumnKey(key), i, Text(label)))  # type: ignore[arg-type]
                    return
            return
        row = int(self.scroll_offset.y) + offset.y - 1
        if row < len(self._keys):
            again = row == self._cursor
            self.move_cursor(row=row)
            if again:
                self.action_select_cursor()
