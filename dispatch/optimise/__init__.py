"""The dispatch optimiser: one convex program per site (``formulation``), re-solved every step
through a persistent HiGHS model (``hot``) or any cvxpy solver, answering with a ``Plan``
(``model``, ``outcome``). Pure: no I/O, no wall clock. cvxpy and highspy live here only.
"""

from dispatch.optimise.model import DispatchModel, solver_path

__all__ = ["DispatchModel", "solver_path"]
