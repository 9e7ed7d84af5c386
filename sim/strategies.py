"""Named backtest strategies and a progress line, shared by the backtest CLI and sweeps.

Role: map a strategy name to the ``sim.backtest`` call that runs it, and report the progress of
long replays on stderr. Depends on ``sim.backtest``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

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
    """A tqdm progress bar on a stream (stderr by default), quiet when the stream is not a
    terminal unless ``quiet=False``; redrawn at most every ``every_s`` seconds.

    Call it as ``progress(done, total)``; it closes its bar when ``done == total``.
    """

    def __init__(self, label: str, stream: TextIO | None = None, every_s: float = 0.5,
                 unit: str = "slots", quiet: bool | None = None) -> None:
        self.label, self.unit, self.every_s = label, unit, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet  # None: tqdm's own choice, off when the stream is not a terminal
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, unit=f" {self.unit}", file=self.stream,
                            mininterval=self.every_s, disable=self.quiet, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
