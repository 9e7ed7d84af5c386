"""Hand-built SVG charts of the status page: time axes in site-local hours, tariff bands.

Role: pure drawing of the plan (battery power and SoC against the tariff bands), the import
price and the grid import against the month's peak target; no scripts and no external
resources, so the page works offline on a plant LAN. Every element a reader (or a test)
looks for has an ``id`` or a ``class`` and a ``<title>`` with its value. Imports the standard
library and pandas.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

W, LEFT, RIGHT, TOP, BOTTOM = 900, 64, 64, 14, 34
#: Background colour of each band (unknown bands cycle through ``SPARE``).
BAND_COLOURS = {
    "deep_valley": "#cfe8d5",
    "valley": "#e1f0e4",
    "flat": "#f4f4f4",
    "peak": "#fbe3cc",
    "critical_peak": "#f7c6c0",
    "day_ahead": "#eef",
}
SPARE = ("#e8e0f4", "#f9f0c8", "#d8ecf4", "#f0d8e8")
BATT, SOC, PRICE, GRID, PLANNED = "#1f77b4", "#2ca02c", "#7f3f98", "#444444", "#888888"


def band_colour(name: str, names: Sequence[str]) -> str:
    """The background colour of band ``name`` (``names``: every band, for a stable spare)."""
    return BAND_COLOURS.get(name) or SPARE[list(names).index(name) % len(SPARE)]


def esc(x: object) -> str:
    """``x`` as escaped text."""
    return html.escape(str(x))


@dataclass
class TimeChart:
    """One chart: a time axis from ``t0`` to ``t1`` (UTC) and a value axis ``lo .. hi``.

    Attributes
    ----------
    chart_id : str
        The ``<svg>`` id.
    t0, t1 : pandas.Timestamp
        Ends of the time axis (UTC).
    lo, hi : float
        Ends of the left value axis (its unit in ``unit``).
    tz : str
        Site time zone of the hour ticks.
    height : int
        Height (px).
    unit : str
        Left axis label.
    """

    chart_id: str
    t0: pd.Timestamp
    t1: pd.Timestamp
    lo: float
    hi: float
    tz: str
    height: int = 240
    unit: str = ""
    parts: list[str] = field(default_factory=list)

    def x(self, t: pd.Timestamp) -> float:
        """Pixel column of time ``t``."""
        span = (self.t1 - self.t0).total_seconds() or 1.0
        return LEFT + (W - LEFT - RIGHT) * (t - self.t0).total_seconds() / span

    def y(self, v: float, lo: float | None = None, hi: float | None = None) -> float:
        """Pixel row of value ``v`` on the left axis (or on ``lo .. hi``)."""
        lo, hi = (self.lo, self.hi) if lo is None or hi is None else (lo, hi)
        frac = (v - lo) / ((hi - lo) or 1.0)
        return self.height - BOTTOM - (self.height - TOP - BOTTOM) * frac

    def bands(self, bands: pd.Series, step: pd.Timedelta, names: Sequence[str]) -> None:
        """Shaded backgrounds, one rectangle per run of slots in the same band."""
        runs: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
        for t, name in bands.items():
            t = pd.Timestamp(t)
            if runs and runs[-1][0] == name and runs[-1][2] == t:
                runs[-1] = (name, runs[-1][1], t + step)
            else:
                runs.append((str(name), t, t + step))
        for name, a, b in runs:
            a, b = max(a, self.t0), min(b, self.t1)
            if b <= a:
                continue
            x0, x1 = self.x(a), self.x(b)
            self.parts.append(
                f'<rect class="band band-{esc(name)}" x="{x0:.1f}" y="{TOP}" '
                f'width="{x1 - x0:.1f}" height="{self.height - TOP - BOTTOM}" '
                f'fill="{band_colour(name, names)}"><title>{esc(name)}</title></rect>'
            )

    def grid(self, ticks: Sequence[float], fmt: str = "{:g}") -> None:
        """Horizontal gridlines with labels on the left axis."""
        for v in ticks:
            y = self.y(v)
            self.parts.append(
                f'<line class="gridline" x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" '
                f'y2="{y:.1f}" stroke="#ddd"/><text x="{LEFT - 4}" y="{y + 4:.1f}" '
                f'text-anchor="end" font-size="11">{esc(fmt.format(v))}</text>'
            )

    def right_axis(self, ticks: Sequence[float], lo: float, hi: float, fmt: str) -> None:
        """Labels of a second value axis ``lo .. hi`` on the right."""
        for v in ticks:
            y = self.y(v, lo, hi)
            self.parts.append(
                f'<text x="{W - RIGHT + 4}" y="{y + 4:.1f}" font-size="11">'
                f"{esc(fmt.format(v))}</text>"
            )

    def hour_ticks(self, every_h: int | None = None) -> None:
        """Vertical gridlines at site-local hours (multiples of ``every_h``; by default 3 up
        to a 36-hour axis, else 6), the date at each local midnight."""
        if every_h is None:
            every_h = 3 if self.t1 - self.t0 <= pd.Timedelta(hours=36) else 6
        local0 = self.t0.tz_convert(self.tz).floor("h")
        t = local0
        bottom = self.height - BOTTOM
        while t <= self.t1:
            if t >= self.t0 and t.hour % every_h == 0:
                x = self.x(t.tz_convert("UTC"))
                midnight = t.hour == 0
                label = t.strftime("%a %d %b") if midnight else t.strftime("%H:%M")
                weight = ' font-weight="bold"' if midnight else ""
                self.parts.append(
                    f'<line class="hour-tick" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" '
                    f'y2="{bottom}" stroke="{"#999" if midnight else "#e2e2e2"}"/>'
                    f'<text class="hour-label" x="{x:.1f}" y="{bottom + 14}" '
                    f'text-anchor="middle" font-size="11"'
                    f"{weight}>{esc(label)}</text>"
                )
            t = (t + pd.Timedelta(hours=1)).tz_convert(self.tz)
        self.parts.append(
            f'<text x="{W - RIGHT}" y="{self.height - 4}" text-anchor="end" font-size="11">'
            f"site time ({esc(self.tz)})</text>"
        )

    def steps(
        self,
        elem_id: str,
        values: pd.Series,
        step: pd.Timedelta,
        colour: str,
        lo: float | None = None,
        hi: float | None = None,
        width: float = 2.0,
        dash: str = "",
        title: str = "",
    ) -> None:
        """A step line of per-slot values (each held over its slot)."""
        pts = []
        for t, v in values.items():
            if not math.isfinite(float(v)):
                continue
            a, b = max(pd.Timestamp(t), self.t0), min(pd.Timestamp(t) + step, self.t1)
            if b <= a:
                continue
            y = self.y(float(v), lo, hi)
            pts.append(f"{self.x(a):.1f},{y:.1f} {self.x(b):.1f},{y:.1f}")
        if not pts:
            return
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline id="{elem_id}" fill="none" stroke="{colour}" stroke-width="{width}"'
            f'{extra} points="{" ".join(pts)}"><title>{esc(title)}</title></polyline>'
        )

    def hline(
        self,
        elem_id: str,
        value: float,
        colour: str,
        label: str,
        lo: float | None = None,
        hi: float | None = None,
        dash: str = "6 4",
        anchor: str = "start",
    ) -> None:
        """A horizontal line across the chart with a label above its left (or right) end."""
        y = self.y(value, lo, hi)
        x_text = LEFT + 4 if anchor == "start" else W - RIGHT - 4
        self.parts.append(
            f'<g id="{elem_id}" data-value="{value:g}"><line x1="{LEFT}" y1="{y:.1f}" '
            f'x2="{W - RIGHT}" y2="{y:.1f}" stroke="{colour}" stroke-width="1.5" '
            f'stroke-dasharray="{dash}"/><text x="{x_text}" y="{y - 4:.1f}" font-size="11" '
            f'text-anchor="{anchor}" fill="{colour}">{esc(label)}</text>'
            f"<title>{esc(label)}</title></g>"
        )

    def now(self, t: pd.Timestamp, label: str) -> None:
        """The "now" marker: a vertical line with its local time."""
        if not self.t0 <= t <= self.t1:
            return
        x = self.x(t)
        self.parts.append(
            f'<g class="now-marker"><line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" '
            f'y2="{self.height - BOTTOM}" stroke="#d62728" stroke-width="2"/>'
            f'<text x="{x + 3:.1f}" y="{TOP + 11}" font-size="11" fill="#d62728">now '
            f"{esc(label)}</text><title>now {esc(label)}</title></g>"
        )

    def svg(self, label: str) -> str:
        """The chart as an inline ``<svg>`` (``label``: its accessible name)."""
        frame = (
            f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" '
            f'height="{self.height - TOP - BOTTOM}" fill="none" stroke="#999"/>'
        )
        return (
            f'<svg id="{self.chart_id}" xmlns="http://www.w3.org/2000/svg" width="{W}" '
            f'height="{self.height}" viewBox="0 0 {W} {self.height}" role="img" '
            f'aria-label="{esc(label)}"><text x="{LEFT}" y="{TOP - 3}" font-size="11">'
            f"{esc(self.unit)}</text>{''.join(self.parts)}{frame}</svg>"
        )


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values covering ``lo .. hi`` (1, 2, 2.5 or 5 times a power of 10)."""
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def legend(names: Sequence[str], prices: dict[str, float], currency: str) -> str:
    """The band legend (HTML): a swatch, the band's name and its price."""
    items = []
    for name in names:
        price = prices.get(name)
        text = f"{name} {price:.2f} {currency}/kWh" if price is not None else name
        items.append(
            f'<li><span class="swatch" style="background:{band_colour(name, names)}"></span>'
            f"{esc(text)}</li>"
        )
    return f'<ul id="band-legend" class="legend">{"".join(items)}</ul>'
