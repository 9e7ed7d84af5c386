"""Pure carbon arithmetic: the grid intensity per slot from the configuration.

Role: emissions accounting (the carbon-ledger issue extends this module). May import only
``dispatch.types`` and ``dispatch.config``; no I/O, no wall clock.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.types import check_time_index


def grid_intensity_g_per_kwh(config: SiteConfig, index: pd.DatetimeIndex) -> pd.Series:
    """Configured grid carbon intensity for each slot (g CO2 per kWh).

    The 24-value hourly profile (site-local hour of the slot start) when configured, else the
    constant grid emission factor.

    Parameters
    ----------
    config : SiteConfig
        The site; ``carbon`` and ``site.timezone`` are used.
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step.
    """
    check_time_index(index, "carbon intensity index")
    profile = config.carbon.hourly_profile_g_per_kwh
    if profile is None:
        values = np.full(len(index), config.carbon.grid_ci_g_per_kwh)
    else:
        hours = index.tz_convert(config.site.timezone).hour
        values = np.asarray(profile, dtype=float)[np.asarray(hours)]
    return pd.Series(values, index=index, name="ci_g_per_kwh")
