"""A persistent HiGHS model fed from the cvxpy formulation, hot-started every re-solve.

Role: the fast path of ``solve``. cvxpy compiles the DPP problem once into an affine map from
the parameter vector to the LP's costs, right-hand sides and column bounds; the constraint matrix
does not depend on the parameters. This module keeps that map and one ``highspy.Highs`` model,
and per solve only recomputes costs and bounds (three sparse mat-vecs), updates the model and
re-runs it from the previous basis. Inequality rows on a single variable (caps written as
constraints) become column bounds, as a presolve would make them. Imports cvxpy and highspy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import highspy
import numpy as np
import scipy.sparse as sp


@contextmanager
def _stdout_silenced() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null for the duration (C-level prints included)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@dataclass(frozen=True)
class HotResult:
    """Outcome of one hot solve.

    Attributes
    ----------
    optimal : bool
        True when HiGHS reports an optimal solution.
    status : str
        HiGHS's model status text.
    objective : float
        Objective value including cvxpy's constant offset.
    values : dict of int to numpy.ndarray
        Variable id -> value (shaped like the variable).
    duals : dict of int to numpy.ndarray
        Constraint id -> dual value (flat, cvxpy's sign convention: >= 0 for an inequality;
        for a cap lifted into a column bound, the bound's reduced cost when it is the active
        bound, else 0); empty when not optimal.
    """

    optimal: bool
    status: str
    objective: float
    values: dict[int, np.ndarray]
    duals: dict[int, np.ndarray]


@dataclass(frozen=True)
class _Singletons:
    """Inequality rows ``a * x_j <= b`` with one non-zero, lifted into column bounds."""

    rows: np.ndarray
    cols: np.ndarray
    coef: np.ndarray

    @classmethod
    def find(cls, a: sp.csc_matrix, first_row: int) -> _Singletons:
        csr = sp.csr_matrix(a)
        counts = np.diff(csr.indptr)
        rows = np.flatnonzero(counts == 1)
        rows = rows[rows >= first_row]
        starts = csr.indptr[rows]
        return cls(rows, csr.indices[starts], csr.data[starts])

    def apply(self, b: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Tighten ``lower``/``upper`` in place with these rows' right-hand sides ``b``."""
        bound = b[self.rows] / self.coef
        up = self.coef > 0
        np.minimum.at(upper, self.cols[up], bound[up])
        np.maximum.at(lower, self.cols[~up], bound[~up])


class HotHighs:
    """One HiGHS model for one cvxpy problem, re-solved with new parameter values.

    Parameters
    ----------
    problem : cvxpy.Problem
        A DPP problem whose parameters all have values, and whose constraint matrix does not
        depend on its parameters (checked; ``ValueError`` otherwise).
    method : {"simplex", "ipm", "ipm+simplex"}
        HiGHS's LP method. Simplex re-solves from the previous basis; "ipm+simplex" makes the
        first solve with interior point and crossover (fast from scratch on long horizons) and
        every later one with simplex from that basis.
    options : dict, optional
        Further HiGHS options (name -> value).
    """

    def __init__(
        self, problem: cp.Problem, method: str = "simplex", options: dict[str, Any] | None = None
    ) -> None:
        data, _, _ = problem.get_problem_data(cp.HIGHS)
        pp = data[cp.settings.PARAM_PROB]
        a_full = data["A"].tocsc()
        m, n = a_full.shape
        n_params = pp.total_param_size
        tensor = sp.csc_matrix(pp.reduced_A.matrix_data)
        if tensor[: m * n, :n_params].count_nonzero():
            raise ValueError("the constraint matrix depends on parameters; use a cvxpy solve")
        n_eq = int(data["dims"].zero)
        self._singletons = _Singletons.find(a_full, n_eq)
        kept = np.setdiff1d(np.arange(m), self._singletons.rows)
        self._pp = pp
        self._n = n
        self._n_eq = n_eq
        self._kept = kept
        self._b_map = sp.csr_matrix(tensor[m * n :, :])
        self._q_map = sp.csr_matrix(pp.q)
        inf = highspy.kHighsInf
        self._lower0 = np.full(n, -inf) if data["lower_bounds"] is None else data["lower_bounds"]
        self._upper0 = np.full(n, inf) if data["upper_bounds"] is None else data["upper_bounds"]
        self._cols = np.arange(n, dtype=np.int32)
        self._rows = np.arange(kept.size, dtype=np.int32)
        self._m = m
        # the rows of A follow the program's (canonical) constraints: equalities, then the rest
        offsets = np.cumsum([0, *(c.size for c in pp.constraints)])
        self._constraint_rows = {c.id: (int(o), int(c.size))
                                 for c, o in zip(pp.constraints, offsets[:-1], strict=True)}
        self.method = method
        self._highs = self._new_model(sp.csc_matrix(a_full[kept]), method, options or {})

    def _new_model(self, a: sp.csc_matrix, method: str, options: dict[str, Any]) -> highspy.Highs:
        with _stdout_silenced():  # highspy prints its banner on stdout, where JSON goes
            h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("solver", "simplex" if method == "simplex" else "ipm")
        for name, value in options.items():
            if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
                raise ValueError(f"HiGHS rejected option {name} = {value!r}")
        inf = highspy.kHighsInf
        m, n = a.shape
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_ = np.zeros(n)
        lp.col_lower_ = np.full(n, -inf)
        lp.col_upper_ = np.full(n, inf)
        lp.row_lower_ = np.full(m, -inf)
        lp.row_upper_ = np.zeros(m)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data
        h.passModel(lp)
        return h

    def _param_vector(self, values: Mapping[int, Any]) -> np.ndarray:
        pp = self._pp
        vec = np.zeros(pp.total_param_size + 1)
        vec[-1] = 1.0
        for pid, col in pp.param_id_to_col.items():
            if pid == -1:
                continue
            vec[col : col + pp.param_id_to_size[pid]] = np.ravel(values[pid], order="F")
        return vec

    def solve(self, values: Mapping[int, Any]) -> HotResult:
        """Solve with new parameter values, starting from the last basis.

        Parameters
        ----------
        values : mapping of int to array_like
            Parameter id -> value for every parameter of the problem. The values are not
            checked against the parameters' attributes (sign): the caller owns them.
        """
        inf = highspy.kHighsInf
        vec = self._param_vector(values)
        q = self._q_map @ vec
        b = self._b_map @ vec
        lower, upper = self._lower0.copy(), self._upper0.copy()
        self._singletons.apply(b, lower, upper)
        row_upper = b[self._kept]
        row_lower = np.where(self._kept < self._n_eq, row_upper, -inf)
        h = self._highs
        h.changeColsCost(self._n, self._cols, q[: self._n])
        h.changeColsBounds(self._n, self._cols, lower, upper)
        h.changeRowsBounds(self._kept.size, self._rows, row_lower, row_upper)
        h.run()
        if self.method == "ipm+simplex":
            h.setOptionValue("solver", "simplex")
        status = h.getModelStatus()
        optimal = status == highspy.HighsModelStatus.kOptimal
        sol = h.getSolution() if optimal else None
        x = np.asarray(sol.col_value) if sol is not None else np.zeros(self._n)
        values = {
            vid: x[col : col + self._pp.id_to_var[vid].size].reshape(
                self._pp.id_to_var[vid].shape, order="F"
            )
            for vid, col in self._pp.var_id_to_col.items()
        }
        objective = float(h.getInfo().objective_function_value + q[self._n]) if optimal else np.nan
        duals = self._duals(sol, b, x) if sol is not None else {}
        return HotResult(optimal, h.modelStatusToString(status), objective, values, duals)

    def _duals(self, sol: Any, b: np.ndarray, x: np.ndarray) -> dict[int, np.ndarray]:
        """Per constraint, its rows' duals in cvxpy's convention (the negated HiGHS duals) from
        the solution ``sol``; a singleton row takes its column's reduced cost, scaled, where
        its bound is active."""
        y = np.zeros(self._m)
        y[self._kept] = -np.asarray(sol.row_dual)
        single = self._singletons
        if single.rows.size:
            z = np.asarray(sol.col_dual)[single.cols]
            bound = b[single.rows] / single.coef
            active = np.abs(x[single.cols] - bound) <= 1e-7 + 1e-9 * np.abs(bound)
            dual = -z / single.coef  # >= 0 where this row's bound is the active one; a
            y[single.rows] = np.where(active & (dual > 0), dual, 0.0)  # column at both bounds
            # (e.g. curtailment at PV = 0) takes the sign of the other bound: then 0 here
        return {cid: y[o : o + n] for cid, (o, n) in self._constraint_rows.items()}
