"""A persistent HiGHS model fed from the cvxpy formulation, hot-started every re-solve.

Role: the fast path of ``solve``. cvxpy compiles the DPP problem once into an affine map from
the parameter vector to the LP's costs, right-hand sides and column bounds; the constraint
matrix does not depend on the parameters. This module keeps that map and one ``highspy.Highs``
model, and per solve only recomputes costs and bounds (sparse mat-vecs), passes HiGHS the ones
that changed and re-runs it from the previous basis; duals are mapped back only when read.
Inequality rows on a single variable (caps written as constraints) become column bounds, as a
presolve would make them. Imports cvxpy and highspy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import cvxpy as cp
import highspy
import numpy as np
import scipy.sparse as sp

K = TypeVar("K")
V = TypeVar("V")


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


class Deferred(Mapping[K, V]):
    """A read-only mapping computed on its first read (e.g. duals nobody may look at)."""

    def __init__(self, make: Callable[[], Mapping[K, V]]) -> None:
        self._make: Callable[[], Mapping[K, V]] | None = make
        self._data: Mapping[K, V] = {}

    def _get(self) -> Mapping[K, V]:
        if self._make is not None:
            self._data, self._make = self._make(), None
        return self._data

    def __getitem__(self, key: K) -> V:
        return self._get()[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


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
    duals : mapping of int to numpy.ndarray
        Constraint id -> dual value (flat, cvxpy's sign convention: >= 0 for an inequality;
        for a cap lifted into a column bound, the bound's reduced cost when it is the active
        bound, else 0); computed on first read; empty when not optimal.
    """

    optimal: bool
    status: str
    objective: float
    values: dict[int, np.ndarray]
    duals: Mapping[int, np.ndarray]


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

    @cached_property
    def _sides(self) -> tuple[tuple[np.ndarray, np.ndarray, bool], ...]:
        """Per side (upper bounds, then lower): its rows' positions, their columns, and
        whether no column repeats (then a plain fancy-indexed update is exact)."""
        out = []
        for side in (self.coef > 0, self.coef < 0):
            pos = np.flatnonzero(side)
            cols = self.cols[pos]
            out.append((pos, cols, np.unique(cols).size == cols.size))
        return tuple(out)

    def apply(self, b: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Tighten ``lower``/``upper`` in place with these rows' right-hand sides ``b``."""
        bound = b[self.rows] / self.coef
        for limit, tighter, (pos, cols, unique) in zip(
            (upper, lower), (np.minimum, np.maximum), self._sides, strict=True
        ):
            if unique:
                limit[cols] = tighter(limit[cols], bound[pos])
            else:
                tighter.at(limit, cols, bound[pos])


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
        self._constraint_rows = {
            c.id: (int(o), int(c.size)) for c, o in zip(pp.constraints, offsets[:-1], strict=True)
        }
        self._param_slices = [
            (pid, col, pp.param_id_to_size[pid])
            for pid, col in pp.param_id_to_col.items()
            if pid != -1
        ]
        self._var_slices = [
            (vid, col, pp.id_to_var[vid].size, pp.id_to_var[vid].shape)
            for vid, col in pp.var_id_to_col.items()
        ]
        #: costs, column bounds and row bounds of the last solve (None: send them all)
        self._last: tuple[np.ndarray, ...] | None = None
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
        vec = np.zeros(self._pp.total_param_size + 1)
        vec[-1] = 1.0
        for pid, col, size in self._param_slices:
            vec[col : col + size] = np.ravel(values[pid], order="F")
        return vec

    def _change(
        self,
        q: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        row_lower: np.ndarray,
        row_upper: np.ndarray,
    ) -> None:
        """Pass HiGHS the costs and bounds that differ from the last solve's."""
        h, last = self._highs, self._last
        if last is None:
            h.changeColsCost(self._n, self._cols, q)
            h.changeColsBounds(self._n, self._cols, lower, upper)
            h.changeRowsBounds(self._rows.size, self._rows, row_lower, row_upper)
        else:
            cols = self._cols[q != last[0]]
            if cols.size:
                h.changeColsCost(cols.size, cols, q[cols])
            cols = self._cols[(lower != last[1]) | (upper != last[2])]
            if cols.size:
                h.changeColsBounds(cols.size, cols, lower[cols], upper[cols])
            rows = self._rows[(row_lower != last[3]) | (row_upper != last[4])]
            if rows.size:
                h.changeRowsBounds(rows.size, rows, row_lower[rows], row_upper[rows])
        self._last = (q, lower, upper, row_lower, row_upper)

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
        try:
            self._change(q[: self._n], lower, upper, row_lower, row_upper)
        except BaseException:
            self._last = None  # the model may hold part of the change: send all next time
            raise
        h.run()
        if self.method == "ipm+simplex":
            h.setOptionValue("solver", "simplex")
        status = h.getModelStatus()
        optimal = status == highspy.HighsModelStatus.kOptimal
        sol = h.getSolution() if optimal else None
        x = np.array(sol.col_value) if sol is not None else np.zeros(self._n)
        values = {
            vid: x[col : col + size].reshape(shape, order="F")
            for vid, col, size, shape in self._var_slices
        }
        objective = float(h.getObjectiveValue() + q[self._n]) if optimal else np.nan
        duals: Mapping[int, np.ndarray] = Deferred(lambda: self._duals(sol, b, x)) if sol else {}
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
