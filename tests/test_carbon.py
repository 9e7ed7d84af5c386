"""Carbon intensity per slot from the configuration (constant or site-local hourly profile)."""

from __future__ import annotations

import pandas as pd
import pytest

from dispatch.carbon.accounting import grid_intensity_g_per_kwh
from dispatch.types import ConfigError
from tests.factories import config

INDEX = pd.date_range("2026-06-21T21:00Z", periods=8, freq="30min")


def test_constant_factor():
    cfg = config(carbon={"grid_ci_g_per_kwh": 420.0})
    series = grid_intensity_g_per_kwh(cfg, INDEX)
    assert series.tolist() == [420.0] * 8
    assert series.index.equals(INDEX) and series.name == "ci_g_per_kwh"


def test_profile_uses_site_local_hours():
    profile = [float(100 + h) for h in range(24)]
    cfg = config(
        site={"timezone": "Europe/Berlin"},
        carbon={"hourly_profile_g_per_kwh": profile, "grid_ci_g_per_kwh": 1.0},
    )
    # CEST is UTC+2 in June: 21:00Z is 23:00 local, 22:00Z is midnight
    assert grid_intensity_g_per_kwh(cfg, INDEX).tolist() == [
        123.0,
        123.0,
        100.0,
        100.0,
        101.0,
        101.0,
        102.0,
        102.0,
    ]


def test_profile_needs_24_values():
    with pytest.raises(ConfigError, match=r"carbon\.hourly_profile_g_per_kwh"):
        config(carbon={"hourly_profile_g_per_kwh": [1.0] * 23})
