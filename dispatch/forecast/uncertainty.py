"""How far the net load may exceed its forecast: quantiles of the controller's own past errors.

Role: the one estimator of forecast uncertainty, for the daemon and for every replay of it.
``ForecastErrors`` is fed the net-load forecasts the controller issued (``issue``) and the net
load it then measured (``observe``); an error is actual minus forecast (kW), known once its
slot is past. Once a day (see ``margin_kw``) the errors on the slots of the last
``history_days`` are grouped by the target slot's kind of day (working or not), its
site-local hour and the lead time (under 1 h, 1-4 h, 4-12 h, beyond) and their ``level``
quantile is taken, falling back to (hour, lead) below ``min_samples`` errors. Forecasts
issued in the first ``warmup_days`` after the first measurement are left out: made with almost
no history, their errors say little about the forecaster. Until a slot's group has errors,
its margin is ``cold_start_frac`` of the forecast load: a forecaster without a record is the
least to be trusted, and the errors of other hours (the night's, in the first days) say
nothing about the day's peaks.

``paths_kw`` gives load paths instead: today's forecast plus the error path of each forecast
issued at the same time of day on a recent day of the same kind.

The daemon rebuilds it from its store on start (stored forecasts and measurements) and feeds
it as it goes; a replay runs the daemon's jobs, so it is fed the same records. Only the past
is read: a slot's actual value counts only once the slot lies before the issue time asked
about. Pure: no I/O, no wall clock. Imports numpy, pandas and ``dispatch.calendar``.
"""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np
import pandas as pd

from dispatch.calendar import WORK, FactoryCalendar
from dispatch.forecast.lookup import stamps_ns

__all__ = ["LEAD_EDGES_H", "ForecastErrors"]

#: Lead-time buckets (h): under 1, 1-4, 4-12, beyond.
LEAD_EDGES_H = (1.0, 4.0, 12.0)
_N_LEAD = len(LEAD_EDGES_H) + 1
#: Days of slots whose kind of day and hour are kept (the oldest are dropped beyond).
_KINDS_KEPT = 512


class ForecastErrors:
    """The errors of issued net-load forecasts and the margins they imply.

    Parameters
    ----------
    calendar : FactoryCalendar
        Working days and the site time zone (hours are site-local).
    step : pandas.Timedelta
        Slot length of the forecasts and of the measured net load.
    level : float
        Quantile level of the error, in [0.5, 1).
    history_days : int
        Days of issued forecasts whose errors count.
    min_samples : int
        Errors a group needs to be used.
    warmup_days : int
        Days after the first measurement whose forecasts do not count.
    cold_start_frac : float
        Margin as a share of the forecast load where no errors are known. 0.4 was chosen on
        the 2018 replays of the German and Korean plants (an in-sample choice: 0.25 gave
        66.1 % and 60.8 % of the perfect-foresight saving, 0.4 gave 68.1 % and 61.3 %).
    """

    def __init__(
        self,
        calendar: FactoryCalendar,
        step: pd.Timedelta,
        level: float,
        history_days: int = 28,
        min_samples: int = 50,
        warmup_days: int = 14,
        cold_start_frac: float = 0.4,
    ) -> None:
        if not 0.5 <= level < 1.0:
            raise ValueError(f"level = {level} must lie in [0.5, 1)")
        self.calendar, self.level = calendar, float(level)
        self.step = pd.Timedelta(step)
        self.dt_h = self.step.total_seconds() / 3600.0
        self.day = round(24 / self.dt_h)
        self.history = history_days * self.day
        self.min_samples, self.warmup = min_samples, warmup_days * self.day
        self.cold_start_frac = cold_start_frac
        self.first_slot: int | None = None  # the first measured slot (the warmup's anchor)
        # the measured net load (kW) of slots _actual_from.. (NaN: not measured)
        self._actual_from, self._actual_kw = 0, np.empty(0)
        self._issued: dict[int, np.ndarray] = {}
        self._issue_order: list[int] = []  # a heap of the issue slots, for pruning
        self._lengths: Counter[int] = Counter()  # how many issued forecasts have each length
        self._kinds_of: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per day of slots
        self._table: np.ndarray | None = None
        self._table_day: int | None = None
        self._work_of: dict[object, int] = {}

    # ------------------------------------------------------------------ feeding
    def slot(self, t: pd.Timestamp) -> int:
        """The slot number of ``t`` (slots since the epoch; ``t`` tz-aware)."""
        return int(pd.Timestamp(t).value // self.step.value)

    def observe(self, net_kw: pd.Series) -> None:
        """Record measured net load (load - PV, kW) by UTC slot start; NaN is skipped."""
        values = net_kw.to_numpy(float)
        slots = stamps_ns(pd.DatetimeIndex(net_kw.index)) // self.step.value
        ok = np.isfinite(values)
        if ok.any():
            self._store(slots[ok], values[ok])
            first = int(slots[ok].min())
            self.first_slot = first if self.first_slot is None else min(self.first_slot, first)

    def _store(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Keep ``values`` (kW) as the measured net load of ``slots`` (the last of repeats)."""
        if (np.diff(slots) <= 0).any():  # repeated slots: the last value stands
            kept, last = np.unique(slots[::-1], return_index=True)
            slots, values = kept, values[::-1][last]
        old_from, old = self._actual_from, self._actual_kw
        lo, hi = int(slots.min()), int(slots.max()) + 1
        if old.size:
            lo, hi = min(lo, old_from), max(hi, old_from + old.size)
        if lo != old_from or hi - lo != old.size:
            grown = np.full(hi - lo, np.nan)
            grown[old_from - lo : old_from - lo + old.size] = old
            self._actual_from, self._actual_kw = lo, grown
        self._actual_kw[slots - self._actual_from] = values

    def _actual_between(self, lo: int, hi: int) -> np.ndarray:
        """The measured net load (kW) of slots ``lo`` to ``hi - 1``, NaN where not measured."""
        out = np.full(max(hi - lo, 0), np.nan)
        first = max(lo, self._actual_from)
        last = min(hi, self._actual_from + self._actual_kw.size)
        if last > first:
            base = self._actual_from
            out[first - lo : last - lo] = self._actual_kw[first - base : last - base]
        return out

    def issue(self, start: pd.Timestamp, net_kw: np.ndarray) -> None:
        """Record a forecast of net load (kW) issued for the slots from ``start`` on."""
        i = self.slot(start)
        replaced = self._issued.get(i)
        if replaced is not None:
            self._forget_length(len(replaced))
        self._issued[i] = np.asarray(net_kw, dtype=float).copy()
        self._lengths[len(self._issued[i])] += 1
        heapq.heappush(self._issue_order, i)
        self._prune(i)

    def _forget_length(self, n: int) -> None:
        self._lengths[n] -= 1
        if not self._lengths[n]:
            del self._lengths[n]

    def _prune(self, i: int) -> None:
        """Forget what no margin from slot ``i`` on can read."""
        longest = max(self._lengths, default=0)
        oldest = i - self.history - 2 * self.day
        while self._issue_order and self._issue_order[0] < oldest:
            gone = self._issued.pop(heapq.heappop(self._issue_order), None)
            if gone is not None:  # (a slot issued twice is in the heap twice)
                self._forget_length(len(gone))
        cut = oldest - longest - self._actual_from
        if cut > 0:
            self._actual_from, self._actual_kw = oldest - longest, self._actual_kw[cut:]

    # ------------------------------------------------------------------ groups
    def _kinds(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Working day (1) or not (0) and site-local hour of each slot number, from those of
        its day of slots (``day`` slots from a multiple of ``day``), each worked out once."""
        slots = np.asarray(slots, dtype=np.int64)
        if slots.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        days = slots // self.day
        uniq, row = np.unique(days, return_inverse=True)
        tables = [self._day_kinds(int(d)) for d in uniq]
        col = slots - days * self.day
        work = np.stack([t[0] for t in tables])[row, col]
        hour = np.stack([t[1] for t in tables])[row, col]
        return work, hour

    def _day_kinds(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        found = self._kinds_of.get(day)
        if found is None:
            found = self._kinds_of[day] = self._slot_kinds(day * self.day + np.arange(self.day))
            if len(self._kinds_of) > _KINDS_KEPT:
                del self._kinds_of[min(self._kinds_of)]
        return found

    def _slot_kinds(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_kinds`` worked out stamp by stamp."""
        stamps = pd.DatetimeIndex(slots * self.step.value, tz="UTC")
        local = stamps.tz_convert(self.calendar.timezone)
        dates = local.tz_localize(None).normalize()
        new = sorted({d.date() for d in dates.unique()} - self._work_of.keys())
        if new:
            kinds = self.calendar.day_types(new)
            self._work_of.update(zip(new, (np.asarray(kinds) == WORK).astype(int).tolist(),
                                     strict=True))  # fmt: skip
        work = np.array([self._work_of[d.date()] for d in dates], dtype=np.int64)
        return work, np.asarray(local.hour, dtype=np.int64)

    def _bucket(self, n: int) -> np.ndarray:
        lead_h = np.arange(n) * self.dt_h
        return np.searchsorted(LEAD_EDGES_H, lead_h, side="right")

    def _errors(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Errors on the slots of the last ``history`` before slot ``i`` of the counted
        forecasts (issued after the warmup) that covered them, with their target slots and
        lead buckets."""
        lo = i - self.history
        counted = (self.first_slot if self.first_slot is not None else i) + self.warmup
        longest = max((len(v) for v in self._issued.values()), default=0)
        issues = sorted(k for k in self._issued if max(lo - longest, counted) <= k < i)
        if not issues:
            return np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64)
        forecast = np.full((len(issues), longest), np.nan)
        for row, k in enumerate(issues):
            forecast[row, : len(self._issued[k])] = self._issued[k]
        target = np.asarray(issues)[:, None] + np.arange(longest)[None, :]
        actual = np.append(self._actual_between(lo, i), np.nan)
        inside = (target >= lo) & (target < i)
        err = actual[np.where(inside, target - lo, len(actual) - 1)] - forecast
        ok = np.isfinite(err)
        lead = np.broadcast_to(self._bucket(longest)[None, :], err.shape)
        return err[ok], target[ok], lead[ok]

    def _refresh(self, i: int) -> np.ndarray | None:
        """Quantile table [working, hour, lead bucket] from the errors before slot ``i``;
        NaN where no group has ``min_samples`` errors; None with too few errors at all."""
        err, target, lead = self._errors(i)
        if err.size < self.min_samples:
            return None
        uniq, inverse = np.unique(target, return_inverse=True)
        work, hour = self._kinds(uniq)
        frame = pd.DataFrame({"work": work[inverse], "hour": hour[inverse], "lead": lead,
                              "err": err})  # fmt: skip
        table = np.full((2, 24, _N_LEAD), np.nan)
        for keys in (["hour", "lead"], ["work", "hour", "lead"]):
            grouped = frame.groupby(keys)["err"]
            q = grouped.quantile(self.level)[grouped.size() >= self.min_samples]
            for key, value in q.items():
                key = key if isinstance(key, tuple) else (key,)
                sel = tuple(slice(None) if k not in keys else key[keys.index(k)]
                            for k in ("work", "hour", "lead"))  # fmt: skip
                table[sel] = value
        return table

    # ------------------------------------------------------------------ answers
    def margin_kw(self, start: pd.Timestamp, load_kw: np.ndarray) -> np.ndarray:
        """How far the net load of a forecast issued for the slots from ``start`` may exceed
        it at ``level`` (kW, >= 0); ``load_kw`` is that forecast's load (for the cold start).

        The table is rebuilt when ``start`` falls on a new day of slots (UTC days since the
        epoch), from errors of forecasts issued before ``start`` only.
        """
        i = self.slot(start)
        load = np.asarray(load_kw, dtype=float)
        if i // self.day != self._table_day:
            self._table_day, self._table = i // self.day, self._refresh(i)
        cold = self.cold_start_frac * np.maximum(load, 0.0)
        if self._table is None:
            return cold
        work, hour = self._kinds(i + np.arange(len(load)))
        known = self._table[work, hour, self._bucket(len(load))]
        return np.where(np.isfinite(known), np.maximum(known, 0.0), cold)

    def paths_kw(
        self, start: pd.Timestamp, net_kw: np.ndarray, min_paths: int = 5
    ) -> np.ndarray | None:
        """Net load paths for a forecast ``net_kw`` issued for the slots from ``start`` (kW,
        one row per path): the forecast plus the error path of each counted forecast issued
        at the same slot of the day on the last ``history_days`` days of the same kind
        (working or not) whose slots are all past; None below ``min_paths`` such days."""
        i = self.slot(start)
        net = np.asarray(net_kw, dtype=float)
        n = len(net)
        first = (self.first_slot if self.first_slot is not None else i) + self.warmup
        back = i - np.arange(1, self.history // self.day + 1) * self.day
        kinds, _ = self._kinds(np.r_[i, back])
        rows = []
        for k, kind in zip(back.tolist(), kinds[1:].tolist(), strict=True):
            past = self._issued.get(k)
            if k < first or past is None or len(past) < n or k + n > i or kind != kinds[0]:
                continue
            actual = self._actual_between(k, k + n)
            if np.isfinite(actual).all():
                rows.append(net + actual - past[:n])
        return np.array(rows) if len(rows) >= min_paths else None
