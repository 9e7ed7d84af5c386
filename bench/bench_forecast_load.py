"""Benchmark: day-ahead load forecast against seasonal-naive on two real factories (2018).

Run with ``.venv/bin/python -m bench.bench_forecast_load [--no-quantiles]``. Data from
``../shared/data`` (see its README; both CC BY 4.0):

- (b) ``factory_load_vdi4657/LP_G_MV.csv``: a German metal-processing factory measured in 2018
  (Tjaden 2021, Zenodo 10.5281/zenodo.4683455), 15-min mean power normalised to 1000 kWh/a,
  scaled here to 30 GWh/a (x 30,000 W -> kW). Stamps carry their UTC offset (+01:00 / +02:00):
  local period starts, converted to UTC.
- (c) ``steel_uci/Steel_industry_data.csv``: DAEWOO Steel, Gwangyang, 2018 (UCI dataset 851,
  V E Sathishkumar et al.), ``Usage_kWh`` per 15 min -> kW x 4. Stamps are local (Asia/Seoul)
  period ends and each midnight row carries the previous day's date: one day is added to
  those, 15 min subtracted from all, then converted to UTC.

Protocol: for every local day of 2018 that has a full week of history before it, the forecast
is issued at 00:00 site-local time for that day (96 slots, 92/100 on DST days) from the history
strictly before it; days with less than 14 days of history use the forecaster's last-week
fallback. Seasonal-naive is the same local time one week earlier. Score: nMAE = MAE / mean load
over the scored days. Exits with status 1 when ours does not beat seasonal-naive.

Calendars: DE (national holidays) with the Christmas break configured as shutdowns 24 Dec -
5 Jan (the data show 1-5 Jan 2018 and 22-31 Dec 2018 at shutdown level); KR holidays. The
upper bound is the forecast plus the controller's own margin (``ForecastErrors`` at level 0.9,
fed each day's issued forecast, as the daemon feeds it); coverage is the share of actuals
below it. A last table issues intraday forecasts
every 3 h and compares the recent-level blend with the calendar profile alone by lead time.
About 4 CPU-minutes; ``--no-quantiles`` skips the quantiles.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dispatch.forecast.load import (
    DAY_TYPE_NAMES,
    FactoryCalendar,
    LoadOptions,
    forecast_load,
    prepare_history,
    seasonal_naive,
)
from dispatch.forecast.uncertainty import ForecastErrors

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LEVEL = 0.9
STEP = pd.Timedelta(minutes=15)


@dataclass(frozen=True)
class Case:
    """One plant: its load (kW, UTC period starts), calendar and the days to print."""

    label: str
    load_kw: pd.Series
    calendar: FactoryCalendar
    show_days: tuple[str, ...]


def read_lp_g_mv(folder: Path) -> pd.Series:
    """LP_G_MV scaled to 30 GWh/a: kW indexed by UTC period start."""
    raw = pd.read_csv(folder / "factory_load_vdi4657" / "LP_G_MV.csv")
    index = pd.DatetimeIndex(pd.to_datetime(raw["datetime"], utc=True))
    return pd.Series(raw["electrical load [W]"].to_numpy() * 30.0, index=index, name="p_load_kw")


def read_steel(folder: Path) -> pd.Series:
    """Steel plant Usage_kWh per 15 min as kW indexed by UTC period start."""
    raw = pd.read_csv(folder / "steel_uci" / "Steel_industry_data.csv", encoding="utf-8-sig")
    end = pd.to_datetime(raw["date"], format="%d/%m/%Y %H:%M")
    midnight = (end.dt.hour == 0) & (end.dt.minute == 0)
    end = end + pd.to_timedelta(midnight.astype(int), unit="D")
    start = (end - STEP).dt.tz_localize("Asia/Seoul").dt.tz_convert("UTC")
    series = pd.Series(raw["Usage_kWh"].to_numpy() * 4.0, index=pd.DatetimeIndex(start))
    return series.sort_index().rename("p_load_kw")


def cases(folder: Path) -> list[Case]:
    """The two plants with their calendars."""
    christmas = ((dt.date(2017, 12, 24), dt.date(2018, 1, 5)),
                 (dt.date(2018, 12, 24), dt.date(2019, 1, 5)))
    de = FactoryCalendar("Europe/Berlin", country="DE", shutdowns=christmas)
    kr = FactoryCalendar("Asia/Seoul", country="KR")
    de_days = ("2018-03-30", "2018-04-02", "2018-05-01", "2018-05-10", "2018-05-21",
               "2018-10-03", *(f"2018-12-{d}" for d in range(24, 32)))
    kr_days = ("2018-02-15", "2018-02-16", "2018-02-17", "2018-03-01", "2018-05-07",
               "2018-05-22", "2018-06-06", "2018-06-13", "2018-08-15", "2018-09-24",
               "2018-09-25", "2018-09-26", "2018-10-03", "2018-10-09", "2018-12-25")
    return [
        Case("(b) LP_G_MV German metal-processing factory, 30 GWh/a", read_lp_g_mv(folder),
             de, de_days),
        Case("(c) DAEWOO Steel Gwangyang (UCI 851)", read_steel(folder), kr, kr_days),
    ]


def pinball(actual: np.ndarray, q: np.ndarray, level: float) -> np.ndarray:
    """Pinball (quantile) loss per sample (kW)."""
    diff = actual - q
    return np.maximum(level * diff, (level - 1.0) * diff)


def run_case(case: Case, quantiles: bool, options: LoadOptions | None = None) -> pd.DataFrame:
    """Forecast every scorable day; one row per slot with actual, ours, naive (and quantiles)."""
    tz = case.calendar.timezone
    load = case.load_kw
    local_days = pd.date_range("2018-01-08", "2018-12-31", freq="D", tz=tz)
    errors = ForecastErrors(case.calendar, STEP, LEVEL)
    errors.observe(load)  # only slots before each issue time are read
    frames = []
    for day in local_days:
        now = day.tz_convert("UTC")
        end = (day + pd.DateOffset(days=1)).tz_convert("UTC")
        ours = forecast_load(load, now, case.calendar, end, STEP, options)
        past = prepare_history(load, now, STEP, since=now - pd.Timedelta(days=8))
        frame = pd.DataFrame({
            "actual": load.reindex(ours.index).to_numpy(),
            "ours": ours.to_numpy(),
            "naive": seasonal_naive(past, ours.index, tz),
            "day": day.date(),
        }, index=ours.index)
        if quantiles:
            frame["upper"] = ours.to_numpy() + errors.margin_kw(now, ours.to_numpy())
            errors.issue(now, ours.to_numpy())
        frames.append(frame)
    out = pd.concat(frames)
    types = case.calendar.day_types(sorted(set(out["day"])))
    out["day_type"] = out["day"].map(dict(zip(sorted(set(out["day"])), types, strict=True)))
    return out.dropna(subset=["actual", "naive"])


def run_intraday(case: Case, every_h: int = 3, hours: int = 4) -> pd.DataFrame:
    """Intraday forecasts every ``every_h`` hours for ``hours`` ahead, with and without the
    recent-level blend; one row per slot with its lead time (h)."""
    plain = LoadOptions(level_tau_h=1e-9)  # the offset decays to nothing at once
    frames = []
    for now in pd.date_range("2018-01-15", "2018-12-31", freq=f"{every_h}h", tz="UTC"):
        blend = forecast_load(case.load_kw, now, case.calendar, 4 * hours, STEP)
        frames.append(pd.DataFrame({
            "actual": case.load_kw.reindex(blend.index).to_numpy(),
            "ours": blend.to_numpy(),
            "plain": forecast_load(case.load_kw, now, case.calendar, 4 * hours, STEP,
                                   plain).to_numpy(),
            "lead_h": (blend.index - now) / pd.Timedelta(hours=1),
        }))
    return pd.concat(frames).dropna()


def report_intraday(out: pd.DataFrame) -> None:
    """Print nMAE by lead time with and without the recent-level blend."""
    print("\nintraday, issued every 3 h (UTC) from 15 Jan: nMAE by lead time")
    print(f"{'lead':<10}{'blended':>9}{'profile only':>14}")
    for lo, hi in ((0, 1), (1, 2), (2, 4)):
        g = out[(out["lead_h"] >= lo) & (out["lead_h"] < hi)]
        print(f"{f'{lo}-{hi} h':<10}{nmae(g, 'ours'):>9.3f}{nmae(g, 'plain'):>14.3f}")


def nmae(frame: pd.DataFrame, column: str) -> float:
    """MAE of ``column`` against the actual, over the mean actual."""
    return float((frame[column] - frame["actual"]).abs().mean() / frame["actual"].mean())


def report(case: Case, out: pd.DataFrame, quantiles: bool) -> bool:
    """Print the tables of one plant; True when ours beats seasonal-naive over the year."""
    print(f"\n=== {case.label}")
    print(f"scored days: {out['day'].nunique()}, mean load {out['actual'].mean():.1f} kW")
    rows = [("all days", out)] + [
        (DAY_TYPE_NAMES[k], g) for k, g in out.groupby("day_type") if len(g)
    ]
    print(f"{'day type':<16}{'days':>6}{'nMAE ours':>11}{'nMAE naive':>12}{'ratio':>8}")
    for name, g in rows:
        a, b = nmae(g, "ours"), nmae(g, "naive")
        print(f"{name:<16}{g['day'].nunique():>6}{a:>11.3f}{b:>12.3f}{a / b:>8.2f}")
    print("\nper-day nMAE on holidays / shutdowns (each day over its own mean load)")
    print(f"{'date':<12}{'type':<14}{'ours':>7}{'naive':>8}")
    for day in case.show_days:
        g = out[out["day"] == dt.date.fromisoformat(day)]
        if len(g):
            kind = DAY_TYPE_NAMES[int(g['day_type'].iloc[0])]
            print(f"{day:<12}{kind:<14}{nmae(g, 'ours'):>7.3f}{nmae(g, 'naive'):>8.3f}")
    if quantiles:
        print(f"\nupper bound (forecast + margin at level {LEVEL:g}): share of actuals below it,"
              "\nmean pinball loss (kW), and that of the point forecast used as the bound")
        actual = out["actual"].to_numpy()
        cover = float((out["actual"] <= out["upper"]).mean())
        loss = float(pinball(actual, out["upper"].to_numpy(), LEVEL).mean())
        ref = float(pinball(actual, out["ours"].to_numpy(), LEVEL).mean())
        print(f"  coverage {cover:6.3f}  pinball {loss:8.2f}  point {ref:8.2f}")
    return nmae(out, "ours") < nmae(out, "naive")


def main(argv: list[str] | None = None) -> int:
    """Run both plants and print the tables; exit status 1 when ours loses to naive."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-quantiles", action="store_true", help="point forecasts only")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"real data folder {DATA} is absent; it sits beside the project", file=sys.stderr)
        return 2
    ok = True
    for case in cases(DATA):
        t0 = time.perf_counter()
        out = run_case(case, not args.no_quantiles)
        ok &= report(case, out, not args.no_quantiles)
        report_intraday(run_intraday(case))
        print(f"({time.perf_counter() - t0:.0f} s)")
    print("\nresult:", "ours beats seasonal-naive on both plants" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
