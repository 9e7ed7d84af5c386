"""Calibration of the PV model to the plant: a scale factor and, where data allow, a clip limit.

Role: compare measured PV power with the modelled power over the same period, fit
``measured ~ min(scale * modelled, clip_kw)`` robustly, report the fit, and apply it to
forecasts. Pure: no I/O, no wall clock. May import ``dispatch.types``, numpy and pandas.

Which points count: both series present, the model above ``min_model_frac`` of its peak (no
night, no low sun where timing and shading errors dominate), no outage (measured near zero
while the model says sun), no curtailment-suspect flat run below the top (the measured value
frozen while the model moves), no points where the model sits at its own inverter ceiling, and
no outliers (robust residuals beyond ``outlier_sigmas``). The clip limit is kept only when
enough points lie above it, the measured values there are flat, and it explains the data
significantly better than a plain scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dispatch.types import InputError

__all__ = ["CalibrationFit", "apply_calibration", "apply_calibration_frame", "fit_calibration",
           "fit_calibration_frame"]


@dataclass(frozen=True)
class CalibrationFit:
    """Result of `fit_calibration`.

    Attributes
    ----------
    scale : float
        Factor on the modelled power (-).
    clip_kw : float or None
        Plant output ceiling (kW), None when the data show none.
    n_points : int
        Points used in the final fit.
    n_clip_points : int
        Of those, points on the clip limit.
    r2_before, r2_after : float
        Coefficient of determination of the raw model and the calibrated model on the used
        points (-).
    rmse_before_kw, rmse_after_kw : float
        Root-mean-square error on the used points (kW).
    excluded : dict of str to int
        Points left out, by reason.
    """

    scale: float
    clip_kw: float | None
    n_points: int
    n_clip_points: int
    r2_before: float
    r2_after: float
    rmse_before_kw: float
    rmse_after_kw: float
    excluded: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """The fit as a JSON-ready dict."""
        return {"scale": self.scale, "clip_kw": self.clip_kw, "n_points": self.n_points,
                "n_clip_points": self.n_clip_points, "r2_before": self.r2_before,
                "r2_after": self.r2_after, "rmse_before_kw": self.rmse_before_kw,
                "rmse_after_kw": self.rmse_after_kw, "excluded": dict(self.excluded)}


def _series(s: pd.Series, what: str) -> pd.Series:
    if not isinstance(s, pd.Series):
        raise InputError(f"calibration: {what} must be a pandas Series, got {type(s).__name__}")
    idx = s.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or str(idx.tz) != "UTC":
        raise InputError(f"calibration: {what} needs a tz-aware UTC time index")
    if idx.has_duplicates:
        raise InputError(f"calibration: {what} has a duplicate time stamp "
                         f"{idx[idx.duplicated()][0].isoformat()}")
    return pd.to_numeric(s, errors="coerce").astype(float)


def _flat_runs(y: np.ndarray, m: np.ndarray, tol: float, min_len: int = 3) -> np.ndarray:
    """Points in runs of >= ``min_len`` equal measured values while the model moves > 5 %."""
    same = np.abs(np.diff(y)) <= tol
    flat = np.zeros(y.size, dtype=bool)
    start = 0
    for i in range(1, y.size + 1):
        if i == y.size or not same[i - 1]:
            seg = slice(start, i)
            mm = m[seg]
            if i - start >= min_len and np.nanmax(mm) - np.nanmin(mm) > 0.05 * np.nanmax(mm):
                flat[seg] = True
            start = i
    return flat


def _usable(y: np.ndarray, m: np.ndarray, min_model_frac: float) -> tuple[np.ndarray, dict]:
    """Mask of points fit for calibration and counts of what was left out, by reason."""
    present = np.isfinite(y) & np.isfinite(m)
    m_max = float(np.nanmax(np.where(present, m, np.nan))) if present.any() else 0.0
    y0 = np.where(present, np.clip(y, 0.0, None), np.nan)
    sun = present & (m > min_model_frac * m_max)
    outage = sun & (y0 < 0.02 * m_max)
    y_top = float(np.nanquantile(y0[sun], 0.995)) if sun.any() else 0.0
    flat = sun & _flat_runs(y0, m, 1e-3 * max(m_max, 1e-9)) & (y0 < 0.97 * y_top)
    at_ceiling = sun & (m >= 0.999 * m_max)
    if at_ceiling.sum() < 3:  # a single peak is not a model ceiling
        at_ceiling[:] = False
    keep = sun & ~outage & ~flat & ~at_ceiling
    excluded = {"missing": int((~present).sum()), "night_or_low_sun": int((present & ~sun).sum()),
                "outage": int(outage.sum()), "flat_run": int((flat & ~outage).sum()),
                "model_at_ceiling": int((at_ceiling & ~outage & ~flat).sum())}
    return keep, excluded


def _fit_scale(y: np.ndarray, m: np.ndarray, clip: float | None) -> float:
    """Least-squares scale through the origin on the points below ``clip`` (kW)."""
    s = float(np.median(y / m))
    for _ in range(6):
        below = np.ones(y.size, dtype=bool) if clip is None else s * m < clip
        if below.sum() < 2:
            break
        s = float(np.dot(m[below], y[below]) / np.dot(m[below], m[below]))
    return s


def _predict(m: np.ndarray, scale: float, clip: float | None) -> np.ndarray:
    p = scale * m
    return p if clip is None else np.minimum(p, clip)


def _best_clip(y: np.ndarray, m: np.ndarray, min_clip_points: int,
               min_f_stat: float) -> tuple[float, float | None]:
    """Scale and clip limit (or None) minimising the squared error over a grid of levels.

    A clip is kept when it lowers the squared error significantly for its one extra parameter
    (``(SSE0 - SSE1) / (SSE1 / (n - 2)) >= min_f_stat``) and the measured values above it are
    flat (their slope against the model well below the scale, where that slope is measurable).
    """
    s0 = _fit_scale(y, m, None)
    sse0 = float(np.sum((y - s0 * m) ** 2))
    best = (sse0, s0, None)
    for c in np.unique(np.quantile(y, np.linspace(0.5, 1.0, 101))):
        s = _fit_scale(y, m, float(c))
        if np.sum(s * m > c * 1.02) < min_clip_points:
            continue
        sse = float(np.sum((y - _predict(m, s, float(c))) ** 2))
        if sse < best[0]:
            best = (sse, s, float(c))
    sse1, s1, c1 = best
    if c1 is None:
        return s0, None
    f_stat = (sse0 - sse1) / max(sse1 / max(y.size - 2, 1), 1e-12)
    if f_stat < min_f_stat or not _flat_top(y, m, s1, c1):
        return s0, None
    return s1, c1


def _flat_top(y: np.ndarray, m: np.ndarray, scale: float, clip: float) -> bool:
    """True unless the points above ``clip`` clearly still rise with the model."""
    top = scale * m > clip
    mt, yt = m[top], y[top]
    spread = float(np.sum((mt - mt.mean()) ** 2))
    if top.sum() < 3 or spread <= 0:
        return True
    slope = float(np.dot(mt - mt.mean(), yt - yt.mean()) / spread)
    resid = yt - yt.mean() - slope * (mt - mt.mean())
    se = float(np.sqrt(np.sum(resid**2) / max(top.sum() - 2, 1) / spread))
    return se > 0.25 * scale or slope < 0.5 * scale


def _stats(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    sse = float(np.sum((y - p) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    return (1.0 - sse / sst if sst > 0 else float("nan")), float(np.sqrt(sse / y.size))


def fit_calibration(
    measured_kw: pd.Series, modelled_kw: pd.Series, *, min_points: int = 48,
    min_model_frac: float = 0.1, outlier_sigmas: float = 4.0, min_clip_points: int = 12,
    min_f_stat: float = 25.0,
) -> CalibrationFit:
    """Fit ``measured ~ min(scale * modelled, clip_kw)`` robustly.

    Parameters
    ----------
    measured_kw : pandas.Series
        Measured PV power (kW), UTC index; NaN where missing.
    modelled_kw : pandas.Series
        Modelled PV power (kW) on the same period (the stamps are intersected).
    min_points : int
        Fewest usable points accepted.
    min_model_frac : float
        Points where the model is below this fraction of its peak are left out (-).
    outlier_sigmas : float
        Residuals beyond this many robust standard deviations are outliers.
    min_clip_points : int
        Fewest points above the clip level for a clip limit to be fitted.
    min_f_stat : float
        Significance a clip limit must reach to be kept: the drop in squared error over the
        residual variance (an F statistic with one extra parameter; 25 is about 5 sigma).

    Returns
    -------
    CalibrationFit

    Raises
    ------
    InputError
        For bad series, measured power that looks like W, or too few usable points.
    """
    y_s, m_s = _series(measured_kw, "measured_kw"), _series(modelled_kw, "modelled_kw")
    y_s, m_s = y_s.align(m_s, join="inner")
    y, m = y_s.to_numpy(), m_s.to_numpy()
    y_pk, m_pk = np.nanmax(y, initial=0.0), np.nanmax(m, initial=0.0)
    if m_pk > 0 and y_pk > 50.0 * m_pk:
        raise InputError(f"calibration: measured_kw peaks at {y_pk:g} but the model at "
                         f"{m_pk:g} kW: measured looks like W, give kW")
    keep, excluded = _usable(y, m, min_model_frac)
    scale, clip = (_best_clip(y[keep], m[keep], min_clip_points, min_f_stat)
                   if keep.sum() >= min_points else (1.0, None))
    if keep.sum() >= min_points:
        resid = y - _predict(m, scale, clip)
        mad = np.median(np.abs(resid[keep] - np.median(resid[keep])))
        sigma = max(1.4826 * mad, 0.005 * m_pk)
        outlier = keep & (np.abs(resid) > outlier_sigmas * sigma)
        excluded["outlier"] = int(outlier.sum())
        keep &= ~outlier
    if keep.sum() < min_points:
        raise InputError(f"calibration: only {int(keep.sum())} usable points, need {min_points} "
                         f"(left out: {excluded}); give a longer measured period")
    scale, clip = _best_clip(y[keep], m[keep], min_clip_points, min_f_stat)
    r2b, rmseb = _stats(y[keep], m[keep])
    r2a, rmsea = _stats(y[keep], _predict(m[keep], scale, clip))
    n_clip = 0 if clip is None else int(np.sum(scale * m[keep] >= clip))
    return CalibrationFit(scale, clip, int(keep.sum()), n_clip, r2b, r2a, rmseb, rmsea, excluded)


def fit_calibration_frame(
    measured_kw: pd.DataFrame, modelled_kw: pd.DataFrame, **kwargs: float
) -> dict[str, CalibrationFit]:
    """Per-array fits: one `fit_calibration` per measured column (array name or ``p_pv_kw``).

    Raises
    ------
    InputError
        When a measured column has no modelled counterpart, naming it.
    """
    fits = {}
    for col in measured_kw.columns:
        if col not in modelled_kw.columns:
            raise InputError(f"calibration: measured column {col!r} has no modelled column; "
                             f"have {list(modelled_kw.columns)}")
        try:
            fits[col] = fit_calibration(measured_kw[col], modelled_kw[col], **kwargs)  # type: ignore[arg-type]
        except InputError as exc:
            raise InputError(f"{exc} [column {col!r}]") from None
    return fits


def apply_calibration(p_kw: pd.Series, fit: CalibrationFit) -> pd.Series:
    """Calibrated power ``min(scale * p_kw, clip_kw)`` (kW, >= 0)."""
    out = p_kw * fit.scale
    if fit.clip_kw is not None:
        out = out.clip(upper=fit.clip_kw)
    return out.clip(lower=0.0)


def apply_calibration_frame(
    pv_kw: pd.DataFrame, fits: CalibrationFit | Mapping[str, CalibrationFit]
) -> pd.DataFrame:
    """Apply calibration to a `pv_ac_kw` frame and recompute the ``p_pv_kw`` total.

    Parameters
    ----------
    pv_kw : pandas.DataFrame
        One column per array and ``p_pv_kw`` (kW).
    fits : CalibrationFit or mapping of str to CalibrationFit
        One site fit (applied to the total; the arrays are scaled in proportion) or fits per
        array name (arrays without one are left as they are).
    """
    arrays = [c for c in pv_kw.columns if c != "p_pv_kw"]
    out = pv_kw.copy()
    if isinstance(fits, CalibrationFit):
        total = apply_calibration(pv_kw["p_pv_kw"], fits)
        ratio = (total / pv_kw["p_pv_kw"]).where(pv_kw["p_pv_kw"] > 0, 0.0)
        out[arrays] = pv_kw[arrays].mul(ratio, axis=0)
        out["p_pv_kw"] = total
        return out
    for name, fit in fits.items():
        if name not in arrays:
            raise InputError(f"calibration: no array column {name!r}; have {arrays}")
        out[name] = apply_calibration(pv_kw[name], fit)
    out["p_pv_kw"] = out[arrays].sum(axis=1)
    return out
