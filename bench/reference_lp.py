"""An independent formulation of the dispatch LP as sparse matrices, solved with highspy.

Written apart from ``dispatch.optimise`` (no cvxpy, no shared code) so that it can serve as
the test oracle and as the reference the benchmarks measure against: cold (a new HiGHS model
per solve) and hot (one persistent model whose costs and bounds are updated).

Columns are blocks of ``T`` per quantity, then the terminal slack and one peak per billing
month; demand rows exist only for the slots of their month (no big-M).
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from dispatch.config import SiteConfig

BLOCKS = ("ch", "dis", "imp", "over", "exp", "curt", "e", "slo", "shi", "sres")
INF = highspy.kHighsInf


@dataclass(frozen=True)
class Site:
    """Battery and grid constants (kW, kWh, fractions, currency)."""

    energy_kwh: float
    charge_max_kw: float
    discharge_max_kw: float
    soc_min_frac: float
    soc_max_frac: float
    reserve_frac: float
    eta_charge: float
    eta_discharge: float
    wear_per_kwh: float
    import_max_kw: float
    export_max_kw: float
    demand_charge_per_kw: float
    carbon_price_per_kg: float
    soft_penalty_per_kwh: float
    reserve_penalty_per_kwh: float


@dataclass(frozen=True)
class Instance:
    """One horizon's data, arrays of length T (kW, currency per kWh, g/kWh)."""

    dt_h: float
    pv_kw: np.ndarray
    load_kw: np.ndarray
    price_import: np.ndarray
    price_export: np.ndarray
    ci_g_per_kwh: np.ndarray
    month: np.ndarray
    peak_kw: dict[str, float]
    soc0_frac: float
    terminal_frac: float
    reserve_kwh: np.ndarray | None = None  # per-slot soft floor; else the site's reserve
    charge_frac: dict[str, float] | None = None  # share of a month's demand charge billed


@dataclass(frozen=True)
class Lp:
    """min c'x s.t. row_lo <= A x <= row_hi, col_lo <= x <= col_hi; plus a constant offset."""

    c: np.ndarray
    A: sp.csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    offset: float


def site_from_config(cfg: SiteConfig) -> Site:
    """The reference constants of a site configuration."""
    b = cfg.battery
    return Site(
        energy_kwh=b.energy_kwh,
        charge_max_kw=b.charge_max_kw,
        discharge_max_kw=b.discharge_max_kw,
        soc_min_frac=b.soc_min_frac,
        soc_max_frac=b.soc_max_frac,
        reserve_frac=b.reserve_frac,
        eta_charge=b.eta_charge,
        eta_discharge=b.eta_discharge,
        wear_per_kwh=b.wear_cost_per_kwh,
        import_max_kw=cfg.grid.import_max_kw,
        export_max_kw=cfg.grid.export_limit_kw,
        demand_charge_per_kw=cfg.tariff.demand_charge_per_kw_month,
        carbon_price_per_kg=cfg.carbon.price_per_kg,
        soft_penalty_per_kwh=cfg.plan.soft_penalty_per_kwh,
        reserve_penalty_per_kwh=cfg.plan.reserve_penalty_per_kwh,
    )


def _col(block: str, T: int) -> slice:
    i = BLOCKS.index(block)
    return slice(i * T, (i + 1) * T)


def matrix(site: Site, inst: Instance) -> tuple[sp.csc_matrix, list[str]]:
    """The constraint matrix (depends only on T, efficiencies and the month split)."""
    T, dt = len(inst.load_kw), inst.dt_h
    months = list(dict.fromkeys(inst.month.tolist()))
    n = len(BLOCKS) * T + 1 + len(months)
    eye = sp.identity(T, format="csr")
    shift = sp.eye(T, k=-1, format="csr")
    z = sp.csr_matrix((T, T))

    def row(**blocks: sp.spmatrix) -> sp.csr_matrix:
        return sp.hstack([blocks.get(b, z) for b in BLOCKS], format="csr")

    rows = [
        row(imp=eye, over=eye, exp=-eye, curt=-eye, dis=eye, ch=-eye),  # balance
        row(e=eye - shift, ch=-dt * site.eta_charge * eye, dis=dt / site.eta_discharge * eye),
        row(e=eye, slo=eye),  # >= Emin
        row(e=eye, shi=-eye),  # <= Emax
        row(e=eye, sres=eye),  # >= Ereserve
    ]
    body = sp.vstack(rows, format="csr")
    body = sp.hstack([body, sp.csr_matrix((body.shape[0], n - body.shape[1]))], format="csr")
    term = sp.lil_matrix((1, n))
    term[0, _col("e", T).stop - 1] = 1.0
    term[0, len(BLOCKS) * T] = 1.0
    demand = sp.lil_matrix((T, n))
    for t in range(T):
        k = months.index(inst.month[t])
        demand[t, _col("imp", T).start + t] = 1.0
        demand[t, _col("over", T).start + t] = 1.0
        demand[t, len(BLOCKS) * T + 1 + k] = -1.0
    return sp.vstack([body, term.tocsr(), demand.tocsr()], format="csc"), months


def bounds_and_costs(site: Site, inst: Instance, months: list[str]) -> Lp:
    """Costs and bounds of the instance, with an empty matrix placeholder."""
    T, dt = len(inst.load_kw), inst.dt_h
    E = site.energy_kwh
    K = len(months)
    n = len(BLOCKS) * T + 1 + K
    c = np.zeros(n)
    buy = dt * (inst.price_import + site.carbon_price_per_kg * inst.ci_g_per_kwh / 1000.0)
    c[_col("imp", T)] = buy
    c[_col("over", T)] = buy + dt * site.soft_penalty_per_kwh
    c[_col("exp", T)] = -dt * inst.price_export
    c[_col("ch", T)] = c[_col("dis", T)] = dt * site.wear_per_kwh
    c[_col("slo", T)] = c[_col("shi", T)] = site.soft_penalty_per_kwh
    c[_col("sres", T)] = dt * site.reserve_penalty_per_kwh
    c[len(BLOCKS) * T] = site.soft_penalty_per_kwh
    share = np.array([(inst.charge_frac or {}).get(m, 1.0) for m in months])
    c[len(BLOCKS) * T + 1 :] = site.demand_charge_per_kw * share
    lo, hi = np.zeros(n), np.full(n, INF)
    hi[_col("ch", T)] = site.charge_max_kw
    hi[_col("dis", T)] = site.discharge_max_kw
    hi[_col("imp", T)] = site.import_max_kw
    hi[_col("exp", T)] = site.export_max_kw
    hi[_col("curt", T)] = inst.pv_kw
    hi[_col("e", T)] = E
    peaks = np.array([inst.peak_kw.get(m, 0.0) for m in months])
    lo[len(BLOCKS) * T + 1 :] = peaks
    e0 = inst.soc0_frac * E
    dyn = np.zeros(T)
    dyn[0] = e0
    row_lo = np.concatenate(
        [
            inst.load_kw - inst.pv_kw,
            dyn,
            np.full(T, site.soc_min_frac * E),
            np.full(T, -INF),
            np.full(T, site.reserve_frac * E) if inst.reserve_kwh is None else inst.reserve_kwh,
            [inst.terminal_frac * E],
            np.full(T, -INF),
        ]
    )
    row_hi = np.concatenate(
        [
            inst.load_kw - inst.pv_kw,
            dyn,
            np.full(T, INF),
            np.full(T, site.soc_max_frac * E),
            np.full(T, INF),
            [INF],
            np.zeros(T),
        ]
    )
    offset = -site.demand_charge_per_kw * float(share @ peaks)
    return Lp(c, sp.csc_matrix((0, n)), row_lo, row_hi, lo, hi, offset)


def build(site: Site, inst: Instance) -> Lp:
    """The whole LP of one instance."""
    a, months = matrix(site, inst)
    lp = bounds_and_costs(site, inst, months)
    return Lp(lp.c, a, lp.row_lo, lp.row_hi, lp.col_lo, lp.col_hi, lp.offset)


def _highs_lp(lp: Lp) -> highspy.HighsLp:
    model = highspy.HighsLp()
    model.num_row_, model.num_col_ = lp.A.shape
    model.col_cost_, model.col_lower_, model.col_upper_ = lp.c, lp.col_lo, lp.col_hi
    model.row_lower_, model.row_upper_ = lp.row_lo, lp.row_hi
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_, model.a_matrix_.index_ = lp.A.indptr, lp.A.indices
    model.a_matrix_.value_ = lp.A.data
    return model


def new_highs(method: str = "simplex") -> highspy.Highs:
    """A silent HiGHS instance using ``method`` ("simplex" or "ipm")."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", method)
    return h


def solve_cold(lp: Lp, method: str = "simplex") -> tuple[float, np.ndarray]:
    """Solve in a new HiGHS model; returns (objective incl. offset, x)."""
    h = new_highs(method)
    h.passModel(_highs_lp(lp))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"reference LP: {h.modelStatusToString(h.getModelStatus())}")
    return h.getInfo().objective_function_value + lp.offset, np.asarray(h.getSolution().col_value)


class HotReference:
    """One persistent HiGHS model; later instances (same matrix) update costs and bounds only."""

    def __init__(self, lp: Lp, method: str = "simplex") -> None:
        self.h = new_highs(method)
        self.h.passModel(_highs_lp(lp))
        self.n, self.m = lp.A.shape[1], lp.A.shape[0]
        self.cols = np.arange(self.n, dtype=np.int32)
        self.rows = np.arange(self.m, dtype=np.int32)

    def solve(self, lp: Lp) -> float:
        """Update costs and bounds to ``lp``'s and re-solve from the last basis."""
        h = self.h
        h.changeColsCost(self.n, self.cols, lp.c)
        h.changeColsBounds(self.n, self.cols, lp.col_lo, lp.col_hi)
        h.changeRowsBounds(self.m, self.rows, lp.row_lo, lp.row_hi)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            h.clearSolver()  # a hot start that ends without a status: solve from scratch
            h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"reference LP: {h.modelStatusToString(h.getModelStatus())}")
        return h.getInfo().objective_function_value + lp.offset
