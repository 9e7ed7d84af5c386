"""The PV a site could have produced where the export limit curtailed what it measured.

Role: on a zero-export (or export-limited) site the inverters curtail PV whenever the site
cannot use or export it, so the PV measured in those slots is a lower bound of the PV
available. Persistence, the intra-day correction and the error book learn from measured PV;
fed curtailed values they forecast too little PV the next day, the plan leaves no room to
store the surplus, more is curtailed, and the forecast sinks further (on the Korean replay
the PV forecast fell 10 kW below the available PV on average, with four times the
curtailment). ``available_pv_kw`` replaces each limited slot's PV by an estimate from the
same day's unlimited slots: the clear-sky PV times that day's clearness (measured over
clear-sky energy in the unlimited daylight slots), never below what was measured.

A slot is *limited* when the grid meter showed export at the limit
(``dispatch.control.export_at_limit``; the daemon's slot history keeps the share of such
readings). The live control does the same for the slot in progress, from the plan's PV
forecast (``dispatch.control.hidden_pv_kw``). Pure: no I/O. Imports numpy and pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["DAYLIGHT_FRAC", "MIN_SLOTS", "available_pv_kw"]
#: Daylight slots: clear-sky PV above this share of the day's clear-sky maximum.
DAYLIGHT_FRAC = 0.1
#: Unlimited daylight slots a day needs for its own clearness (else an earlier day's).
MIN_SLOTS = 4


def available_pv_kw(
    measured_kw: pd.Series, limited: pd.Series, clear_sky_kw: pd.Series, timezone: str
) -> pd.Series:
    """Measured PV with each limited slot raised to the estimate of the PV available.

    Parameters
    ----------
    measured_kw : pandas.Series
        Measured PV (kW) by UTC slot start.
    limited : pandas.Series
        True where the slot's export was at the limit (same index; missing is False).
    clear_sky_kw : pandas.Series
        The site's clear-sky PV (kW) on the same slots.
    timezone : str
        Site time zone: a day's clearness is taken over its site-local day.

    Returns
    -------
    pandas.Series
        PV (kW): measured where not limited; in limited slots the larger of the measured
        value and clear-sky x the day's clearness (the latest earlier day's when the day has
        under ``MIN_SLOTS`` unlimited daylight slots; measured when no day has).
    """
    pv = measured_kw.astype(float)
    flag = limited.reindex(pv.index).fillna(False).to_numpy(bool)
    if not flag.any():
        return pv
    clear = clear_sky_kw.reindex(pv.index).to_numpy(float)
    day = pv.index.tz_convert(timezone).normalize()
    peak = pd.Series(clear).groupby(day).transform("max").to_numpy()
    usable = ~flag & (clear > DAYLIGHT_FRAC * peak) & np.isfinite(pv.to_numpy())
    sums = (
        pd.DataFrame(
            {
                "pv": np.where(usable, pv.to_numpy(), 0.0),
                "clear": np.where(usable, clear, 0.0),
                "n": usable,
            }
        )
        .groupby(day)
        .sum()
    )
    ratio = (sums["pv"] / sums["clear"]).where(sums["n"] >= MIN_SLOTS).ffill()
    clearness = ratio.reindex(day).to_numpy()
    estimate = np.fmax(pv.to_numpy(), clear * clearness)
    return pd.Series(np.where(flag, estimate, pv.to_numpy()), index=pv.index, name=pv.name)
