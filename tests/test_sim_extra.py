"""``sim.extra.require``: a module that needs the ``[sim]`` extra fails with the install line;
other import errors pass through. (The lean install itself: ``integration/test_wheel.py``.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sim.extra import MissingExtraError, require


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("needs_the_extra", "needs_something_else"):
        sys.modules.pop(name, None)


def test_a_module_of_the_extra_that_is_missing_says_what_to_install(modules: Path) -> None:
    (modules / "needs_the_extra.py").write_text("import distributed.no_such_module_here\n")
    with pytest.raises(MissingExtraError) as exc:
        require("needs_the_extra", "a sweep on Dask")
    assert str(exc.value) == ("a sweep on Dask needs distributed, which is not installed: "
                              "install factory-dispatch[sim] (pip install 'factory-dispatch[sim]')")


def test_other_missing_modules_are_not_blamed_on_the_extra(modules: Path) -> None:
    (modules / "needs_something_else.py").write_text("import no_such_package_anywhere\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_package_anywhere"):
        require("needs_something_else", "x")


def test_an_installed_module_is_returned() -> None:
    assert require("sim.report", "the backtest report").__name__ == "sim.report"
