"""Named backtest strategies and a progress line, shared by the backtest CLI and sweeps.

Role: map a strategy name to the ``sim.backtest`` call that runs it, and report the progress of
long replays on stderr. Depends on ``sim.backtest``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from sim import backtest, forecasters, replay, rules
from sim.scenario import Scenario

Progress = Callable[[int, int], None]

#: Strategy names in report order; the first is the baseline, the last the bound.
STRATEGIES = (
    "no_battery",
    "self_consumption",
    "peak_shaving",
    "threshold_ratchet",
    "receding_naive",
    "receding_noisy",
    "receding_robust",
    "receding_perfect",
    "perfect_foresight",
)
DEFAULT_STRATEGIES = (
    "no_battery",
    "self_consumption",
    "peak_shaving",
    "threshold_ratchet",
    "receding_naive",
    "receding_robust",
    "receding_perfect",
    "perfect_foresight",
)


def run_strategy(
    name: str, scenario: Scenario, progress: Progress | None = None
) -> backtest.Outcome:
    """Run one named strategy on ``scenario``.

    Parameters
    ----------
    name : str
        One of ``STRATEGIES``.
    scenario : Scenario
        Site and data.
    progress : callable, optional
        ``progress(done, total)`` for the receding-horizon replays (slots).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name == "no_battery":
        return backtest.no_battery(scenario)
    if name == "self_consumption":
        return backtest.self_consumption(scenario)
    if name == "peak_shaving":
        return backtest.peak_shaving(scenario)
    if name == rules.NAME:
        return rules.threshold_ratchet(scenario)
    if name == "perfect_foresight":
        return backtest.perfect_foresight(scenario)
    if name == replay.NAME:  # our controller: the daemon's own jobs
        return replay.daemon_replay(scenario, progress=progress)[0]
    told = {"receding_naive": forecasters.persistence, "receding_perfect": forecasters.perfect,
            "receding_noisy": forecasters.noisy(0.1, seed=0)}  # fmt: skip
    if name in told:
        return backtest.receding(scenario, told[name], name, progress=progress,
                                 published_only=name != "receding_perfect")  # fmt: skip
    raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")


class ProgressLine:
    """A one-line progress display on a stream, redrawn at most every ``every_s`` seconds.

    Call it as ``progress(done, total)``; it ends its line when ``done == total``.
    """

    def __init__(self, label: str, stream: TextIO | None = None, every_s: float = 0.5,
                 unit: str = "slots") -> None:  # fmt: skip
        self.label, self.unit = label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.t0 = time.perf_counter()
        self.last = -float("inf")

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = now - self.t0
        eta = elapsed / done * (total - done) if done else float("nan")
        bar = "#" * int(30 * done / max(total, 1))
        self.stream.write(f"\r{self.label:<18} [{bar:<30}] {done:>6}/{total} {self.unit} "
                          f"{elapsed:6.1f} s, {eta:6.1f} s left")  # fmt: skip
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
