"""Time-series charts (textual-plotext) fed from plantwatch.core.views.queries.Series snapshots."""

from __future__ import annotations

from datetime import UTC, datetime

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from plantwatch.core.views.queries import Series


class SeriesChart(PlotextPlot):
    DEFAULT_CSS = """
    SeriesChart { height: 10; min-width: 40; }
    """
    _shown = 0                                    # bumped by every show()
    _drawn: tuple[tuple, RenderResult] | None = None

    def render(self) -> RenderResult:
        """Textual asks for a widget's render on every repaint of it (a device screen filled
        asked twice per chart); plotext builds the whole plot each time, so the last one is
        kept while the data, the size and the theme are the same."""
        key = (self._shown, self.size, self.app.theme, self.theme)
        if self._drawn is None or self._drawn[0] != key:
            self._drawn = (key, super().render())
        return self._drawn[1]

    def show(self, series: Series, color: str = "green") -> None:
        self._shown += 1
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not series.ts:
            plt.title(f"{series.title}: no data")
            self.refresh()
            return
        t0 = series.ts[0]
        hours = [(t - t0) / 3.6e12 for t in series.ts]
        if len(hours) > 1:
            plt.bar(hours, list(series.values), color=color, width=0.9 * (hours[1] - hours[0] or 1))
        else:
            plt.scatter(hours, list(series.values), color=color)
        span_h = hours[-1] or 1.0
        ticks = [span_h * i / 4 for i in range(5)]
        fmt = "%H:%M" if span_h <= 24 else "%m-%d %H:%M"
        plt.xticks(ticks, [datetime.fromtimestamp((t0 + h * 3.6e12) / 1e9, tz=UTC).strftime(fmt)
                           for h in ticks])
        plt.title(f"{series.title} (UTC, packet time)")
        self.refresh()
