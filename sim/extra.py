"""The optional ``[sim]`` extra (matplotlib, dask): import its modules or say how to get them.

Role: the daemon installs lean (``pip install factory-dispatch``); the backtest report's plots
(matplotlib) and Dask sweeps (``dask[distributed]``) come with
``pip install 'factory-dispatch[sim]'``. ``require`` imports a module that needs the extra and
turns its absence into ``MissingExtraError`` with that instruction, so a command fails with one
clear line before it starts work, not with a traceback at its end. Imports ``dispatch.types``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dispatch.types import DispatchError

EXTRA = "factory-dispatch[sim]"
EXTRA_MODULES = ("matplotlib", "dask", "distributed")  # top-level names the extra provides


class MissingExtraError(DispatchError):
    """A module of the ``[sim]`` extra is not installed; the message says what to install."""


def require(module: str, needed_for: str) -> ModuleType:
    """Import ``module``; ``MissingExtraError`` when it, or what it imports, is part of the extra.

    Parameters
    ----------
    module : str
        The module to import (``"sim.report"``, ``"distributed"``).
    needed_for : str
        What needs it, for the message (``"the backtest report"``).

    Returns
    -------
    types.ModuleType
        The imported module.

    Raises
    ------
    MissingExtraError
        When the import fails for want of matplotlib, dask or distributed; any other
        ``ModuleNotFoundError`` propagates unchanged.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if top not in EXTRA_MODULES:
            raise
        raise MissingExtraError(
            f"{needed_for} needs {top}, which is not installed: install {EXTRA} "
            f"(pip install '{EXTRA}')"
        ) from None
