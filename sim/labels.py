"""Words for the backtest report: strategy names, colours, KPI column names, number formats.

Role: turn the code names of strategies and KPI columns (``sim.kpis``) into the names an
energy manager reads, and format money, energy, power and site-local times for people. Pure;
depends on pandas only. Used by ``sim.plots`` and ``sim.report_text``.
"""

from __future__ import annotations

import math

import pandas as pd

#: Human names of the strategies (``sim.strategies.STRATEGIES``), by code name or its prefix.
STRATEGY_NAMES = {
    "no_battery": "No battery",
    "self_consumption": "Self-consumption rule",
    "peak_shaving": "Peak-shaving rule",
    "threshold_ratchet": "Threshold rule (ratchet)",
    "receding_naive": "Optimiser, persistence forecast",
    "receding_noisy": "Optimiser, noisy forecast",
    "receding_robust": "Our controller",
    "receding_perfect": "Optimiser, perfect forecast",
    "perfect_foresight": "Best possible (perfect foresight)",
}
STRATEGY_COLORS = {
    "no_battery": "#7f7f7f",
    "self_consumption": "#bcbd22",
    "peak_shaving": "#17becf",
    "threshold_ratchet": "#8c564b",
    "receding_naive": "#9467bd",
    "receding_noisy": "#e377c2",
    "receding_robust": "#d62728",
    "receding_perfect": "#ff7f0e",
    "perfect_foresight": "#1f77b4",
}
FALLBACK_COLORS = ("#2ca02c", "#aec7e8", "#98df8a", "#c49c94", "#f7b6d2", "#dbdb8d")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _code(name: str) -> str | None:
    """The ``STRATEGY_NAMES`` key ``name`` is or starts with (``peak_shaving_0.9``)."""
    if name in STRATEGY_NAMES:
        return name
    found = [k for k in STRATEGY_NAMES if name.startswith(k + "_")]
    return max(found, key=len) if found else None


def strategy_name(name: str) -> str:
    """Human name of a strategy; a parameter suffix is kept in brackets.

    Parameters
    ----------
    name : str
        Code name, e.g. ``"receding_robust"`` or ``"peak_shaving_0.9"``.

    Returns
    -------
    str
        E.g. ``"Our controller"``, ``"Peak-shaving rule (0.9)"``; an unknown name as given.
    """
    code = _code(name)
    if code is None:
        return name
    suffix = name[len(code) + 1 :]
    return STRATEGY_NAMES[code] + (f" ({suffix})" if suffix else "")


def strategy_color(name: str, k: int = 0) -> str:
    """Colour of a strategy in every plot (the ``k``-th fallback for unknown names)."""
    code = _code(name)
    return STRATEGY_COLORS[code] if code else FALLBACK_COLORS[k % len(FALLBACK_COLORS)]


def money(value: float, currency: str) -> str:
    """Money for a sentence: ``1.23 M CNY`` from a million up, else whole units with
    thousands separators (``56,762 CNY``)."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.2f} M {currency}"
    return f"{value:,.0f} {currency}"


def signed_money(value: float, currency: str) -> str:
    """Money with its sign for a change: ``+5,339 CNY``, ``\u22127,850 CNY``."""
    sign = "+" if value > 0 else ("\u2212" if value < 0 else "")
    return sign + money(abs(value), currency)


def number(value: float, decimals: int = 0) -> str:
    """A number with thousands separators and ``decimals`` places; ``-`` for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{decimals}f}"


def percent(frac: float, decimals: int = 0) -> str:
    """A fraction as ``61 %``; ``-`` for NaN."""
    if frac is None or math.isnan(frac):
        return "-"
    return f"{100 * frac:.{decimals}f} %"


def month_name(month: str, coverage: float = 1.0, short: bool = False) -> str:
    """``"2026-01"`` as ``"January 2026"`` (``"Jan 2026"`` short), marked when partial.

    Parameters
    ----------
    month : str
        Billing month ``YYYY-MM``.
    coverage : float
        Share of the month the run covers (``month_coverage``); below 1 the label says
        ``partial`` and the share.
    short : bool
        Three-letter month name.
    """
    year, m = month.split("-")
    name = MONTHS[int(m) - 1]
    label = f"{name[:3] if short else name} {year}"
    if coverage < 1.0 - 1e-9:
        label += f" (partial, {100 * coverage:.0f} %)"
    return label


def local_time(iso: str, timezone: str) -> str:
    """A UTC ISO time as site-local ``Fri 02 Jan 2026 11:15``; ``-`` when missing."""
    if not isinstance(iso, str) or not iso:
        return "-"
    return pd.Timestamp(iso).tz_convert(timezone).strftime("%a %d %b %Y %H:%M")


def zone_label(timezone: str, when: pd.Timestamp) -> str:
    """The time zone as ``Asia/Shanghai, UTC+08:00`` at ``when`` (tz-aware)."""
    offset = when.tz_convert(timezone).strftime("%z")
    return f"{timezone}, UTC{offset[:3]}:{offset[3:]}"
