"""Small builders of site configs and forecasts for tests."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig, parse_config
from dispatch.types import Forecast

BASE: dict[str, Any] = {
    "site": {"latitude_deg": 31.3, "longitude_deg": 120.7, "timezone": "UTC"},
    "grid": {"import_max_kw": 1000.0, "export_allowed": True, "export_max_kw": 1000.0},
    "battery": {
        "energy_kwh": 10.0,
        "charge_max_kw": 10.0,
        "discharge_max_kw": 10.0,
        "soc_min_frac": 0.0,
        "soc_max_frac": 1.0,
        "eta_charge": 1.0,
        "eta_discharge": 1.0,
        "wear_cost_per_kwh": 0.0,
    },
    "tariff": {
        "bands": {"flat": 0.1},
        "rules": [{"band": "flat", "start": "00:00", "end": "24:00"}],
    },
    "carbon": {"grid_ci_g_per_kwh": 0.0, "price_per_kg": 0.0},
    "plan": {"step_min": 60, "horizon_h": 2, "terminal_soc": "free"},
}


def config(**sections: dict[str, Any]) -> SiteConfig:
    """The base toy site with some keys of some sections replaced."""
    data = copy.deepcopy(BASE)
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data)


def forecast(
    load_kw: list[float] | np.ndarray,
    pv_kw: list[float] | np.ndarray | None = None,
    price: list[float] | np.ndarray | float = 0.1,
    export_price: list[float] | np.ndarray | float = 0.0,
    ci: list[float] | np.ndarray | float = 0.0,
    step_min: int = 60,
    start: str = "2026-07-01",
) -> Forecast:
    """A forecast frame from plain lists (kW, currency per kWh, g/kWh)."""
    n = len(load_kw)
    idx = pd.date_range(start, periods=n, freq=f"{step_min}min", tz="UTC")
    frame = pd.DataFrame(
        {
            "p_pv_kw": np.zeros(n) if pv_kw is None else np.asarray(pv_kw, float),
            "p_load_kw": np.asarray(load_kw, float),
            "price_import_per_kwh": np.broadcast_to(np.asarray(price, float), n),
            "price_export_per_kwh": np.broadcast_to(np.asarray(export_price, float), n),
            "ci_g_per_kwh": np.broadcast_to(np.asarray(ci, float), n),
        },
        index=idx,
    )
    return Forecast(frame)
