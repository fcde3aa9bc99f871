"""Devices: every device, sorted by threat score, filterable, updated in place."""

from __future__ import annotations

import time
from functools import partial

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input

from plantwatch.core.views import queries
from plantwatch.core.views.queries import DeviceFilter, DeviceList, DeviceRow, FilterError
from plantwatch.tui.screens.base import BaseScreen, FilterBarMixin, Message1
from plantwatch.tui.widgets.table import SITE_SEP, SnapshotTable, row_key
from plantwatch.tui.widgets.text import plain, score_text, shown_width, spark, when

COLUMNS = [("score", "Score"), ("site", "Site"), ("address", "Address"), ("name", "Name", 24), ("role", "Role"),
           ("zone", "Zone"), ("new", "New"), ("breaches", "Br"), ("activity", "Activity", queries.SPARK_BUCKETS),
           ("vendor", "Vendor"), ("first", "First seen"),
           # identity from the wire last: the first columns a narrow (80-column) terminal drops
           ("model", "Model", 24), ("fw", "Firmware"), ("cves", "CVEs")]
SORTABLE = {"score", "address", "name", "role", "zone", "breaches", "vendor", "first"}
SPARK_EVERY_S = 3.0


def device_cells(r: DeviceRow) -> tuple:
    return (score_text(r.score), plain(r.site), plain(r.ip), plain(r.name, limit=24), plain(r.role), plain(r.zone),
            plain("new" if r.new else "", style="bold"), plain(r.breaches or ""), spark(r.activity),
            plain(r.vendor, limit=30), when(r.first_ts), plain(r.model, limit=24), plain(r.firmware, limit=20),
            plain(r.vulns or "", style="bold red"))


def device_key(r: DeviceRow, many_sites: bool) -> str:
    """The table's key of a device row: its address, and its site when the store holds several."""
    return row_key(r.device, r.site, many_sites)


def split_device_key(key: str) -> tuple[str | None, str]:
    """(site or None, device) of a device row's key."""
    site, sep, device = key.rpartition(SITE_SEP)
    return (site if sep else None), device


def device_widths(rows: list[DeviceRow]) -> dict[str, int]:
    """Widths of the text columns over `rows`, as shown (escaped and cut like `plain` does)."""
    widths = {"score": 4, "new": 3, "first": 19}
    for key, attr, limit in (("site", "site", 200), ("address", "ip", 200), ("name", "name", 24), ("role", "role", 200),
                             ("zone", "zone", 200), ("vendor", "vendor", 30), ("model", "model", 24),
                             ("fw", "firmware", 20)):
        widths[key] = shown_width((getattr(r, attr) for r in rows), limit)
    widths["breaches"] = shown_width(r.breaches for r in rows if r.breaches)
    widths["cves"] = shown_width(r.vulns for r in rows if r.vulns)
    return widths


class DevicesScreen(FilterBarMixin, BaseScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = DeviceFilter()
        self.sort = "score"
        self.reverse = False
        self.snapshot: DeviceList | None = None
        self._spark: dict = {}
        self._spark_at = 0.0
        self._spark_key: tuple | None = None
        self._spark_gap = SPARK_EVERY_S
        self._spark_timer = False
        self._cache = queries.DeviceCache()   # used by the list loader's worker only

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="filter (/): zone:ot role:plc score:>0.5 port:102 new:yes  text",
                    id="filter")
        yield Message1(id="notice")
        table = SnapshotTable(COLUMNS, drop=("fw", "model", "cves", "first", "vendor", "activity", "new", "zone"),
                              id="devices")
        table.switch_column("site", False)   # shown while the store holds more than one site
        yield table

    def on_mount(self) -> None:
        self.list_loader = self.loader(self._query(), self._show)
        self.spark_loader = self.loader(lambda store: queries.activity(store), self._got_spark)
        self.query_one("#notice", Message1).say("loading…")
        self.query_one(SnapshotTable).focus()

    def _query(self):
        flt, sort, rev, spark, cache = self.filter, self.sort, self.reverse, self._spark, self._cache

        def load(store):
            snap = queries.device_list(store, flt, sort, rev, spark, cache)
            # columns sized over every device, once per store change: the layout holds still
            # while the filter changes, and a filter costs no pass over the strings
            widths = cache.extra.get("widths")
            if widths is None:
                widths = cache.extra["widths"] = device_widths([r for r, _ in cache.rows])
            # each device's table row is made once per store change, not once per filter or sort:
            # a filter matching 5,000 devices then costs a lookup per row, not 5,000 new rows
            many = cache.extra.get("many")
            if many is None:
                many = cache.extra["many"] = len({r.site for r, _ in cache.rows}) > 1
            made = cache.extra.setdefault("rows", {})
            rows = []
            for r in snap.rows:
                row = made.get((r.site, r.device))
                if row is None or row[1] is not r:
                    row = made[(r.site, r.device)] = (device_key(r, many), r, partial(device_cells, r))
                rows.append(row)
            return snap, rows, widths, many
        return load

    def refresh_data(self) -> None:
        self.list_loader.request(self._query())
        st = self.app.store_status
        key = (st.devices, st.last_ts) if st else None
        # sparklines scan every session: refresh them at most every SPARK_EVERY_S, and never
        # more often than ten times the last scan took (a big store is not rescanned non-stop)
        if key == self._spark_key:
            return
        wait = self._spark_at + self._spark_gap - time.monotonic()
        if wait <= 0:
            self._spark_key = key
            self._spark_at = time.monotonic()
            self.spark_loader.request()
        elif not self._spark_timer:
            self._spark_timer = True     # come back when the gap has passed

            def again() -> None:
                self._spark_timer = False
                if self.is_current:      # a screen on top of this one has the event loop
                    self.refresh_data()
            self.set_timer(wait, again)

    def _got_spark(self, spark: dict) -> None:
        took = time.monotonic() - self._spark_at
        self._spark_gap = max(SPARK_EVERY_S, 10 * took)
        self._spark = spark
        self.list_loader.request(self._query())

    def _show(self, result: tuple[DeviceList, list, dict, bool]) -> None:
        snap, rows, widths, many = result
        first = self.snapshot is None
        self.snapshot = snap
        table = self.query_one(SnapshotTable)
        table.switch_column("site", many)
        table.show_rows(rows, widths)
        if first:
            self.app.freeze_heap()
        notice = self.query_one("#notice", Message1)
        if snap.total == 0:
            notice.say("no devices yet — waiting for packets")
        elif not snap.rows:
            notice.say(f"no device matches the filter ({snap.total} devices; Escape clears it)")
        elif not snap.detection:
            notice.say(f"{len(snap.rows)} of {snap.total} devices — no breaches yet: still learning "
                       "(scores appear once detection runs)")
        else:
            notice.say(f"{len(snap.rows)} of {snap.total} devices, sorted by {self.sort}"
                       + (" (reversed)" if self.reverse else ""))

    def show_error(self, text: str) -> None:
        """A filter the store cannot answer (a zone no device is in): in the filter bar."""
        self.query_one("#notice", Message1).say(text, error=True)

    # --- actions ---
    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self.filter = queries.parse_device_filter(event.value)
        except FilterError as e:
            self.query_one("#notice", Message1).say(str(e), error=True)
            return
        self.query_one(SnapshotTable).focus()
        self.query_one("#notice", Message1).say("filtering…")
        self.list_loader.request(self._query())

    def action_clear_filter(self) -> None:
        inp = self.query_one("#filter", Input)
        if inp.has_focus:
            self.query_one(SnapshotTable).focus()
            return
        if not self.filter.empty or inp.value:
            inp.value = ""
            self.filter = DeviceFilter()
            self.list_loader.request(self._query())

    def action_sort(self) -> None:
        order = queries.SORT_KEYS
        self.sort = order[(order.index(self.sort) + 1) % len(order)] if self.sort in order else "score"
        self.list_loader.request(self._query())
        self.notify(f"sorted by {self.sort}", timeout=1.5)

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self.list_loader.request(self._query())

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key in SORTABLE:
            self.reverse = (self.sort == key) and not self.reverse
            self.sort = key
            self.list_loader.request(self._query())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.row_key.value)

    def action_open(self) -> None:
        self._open(self.query_one(SnapshotTable).selected_key)

    def _open(self, key: str | None) -> None:
        if key:
            site, device = split_device_key(key)
            self.app.open_device(device, site)
