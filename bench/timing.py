"""Interleaved timing: the minimum of each candidate over rounds that run every candidate in turn.

Timing on a shared machine: other processes only ever add time, so each candidate's *minimum*
over several rounds is its best estimate, and candidates are run in turn within each round
(interleaved), so that a busy phase of the machine slows all of them alike. Ratios of minima
taken in one run are what the benchmarks report and check.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Two samples within this fraction of each other: the minimum is taken as settled.
STABLE_TOLERANCE = 0.05


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of the repetitions of one candidate."""

    samples: tuple[float, ...]

    @property
    def best(self) -> float:
        """The minimum: the run least disturbed by other processes."""
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def stable(self) -> bool:
        """Whether the two fastest samples agree within ``STABLE_TOLERANCE``."""
        fastest = sorted(self.samples)[:2]
        return len(fastest) == 2 and fastest[1] <= fastest[0] * (1 + STABLE_TOLERANCE)


def time_interleaved(
    candidates: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    balance: bool = False,
    max_seconds: float | None = None,
) -> dict[str, Timing]:
    """Time each candidate in rounds: each round runs every candidate once, in an order rotated
    by one place each round.

    Every candidate first runs ``warmup`` times untimed (allocator, oneDNN kernel selection).
    Then ``repeats`` rounds run; with ``max_seconds``, more rounds follow while some candidate's
    minimum is not yet :attr:`Timing.stable` and the rounds so far took less than
    ``max_seconds`` (a busy machine gets more chances of a quiet moment). With ``balance``, a
    candidate k times faster than the slowest one (judged from the last warm-up) runs k times
    back to back per turn, and its sample is the turn's time / k: all turns then last about as
    long and are equally likely to be disturbed by other processes, which would otherwise
    favour the short candidates' minima. Returns a ``Timing`` (seconds per run) per name.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    warm_seconds = dict.fromkeys(candidates, 0.0)
    for _ in range(warmup):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            warm_seconds[name] = time.perf_counter() - start
    runs_per_turn = dict.fromkeys(candidates, 1)
    if balance and warmup > 0:
        longest = max(warm_seconds.values())
        runs_per_turn = {n: max(1, round(longest / max(s, 1e-9))) for n, s in warm_seconds.items()}
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    started = time.perf_counter()
    rounds = 0
    names = list(candidates)
    while True:
        # Each round starts one candidate further along, so that none is always first (right
        # after the previous round's checks) or last. Neighbours within a round stay neighbours:
        # where one candidate's after-effects (another process still finishing its part of a
        # request) must not always fall on the same other one, order them to alternate, as
        # bench/serve_latency.py does.
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            run = candidates[name]
            start = time.perf_counter()
            for _ in range(runs_per_turn[name]):
                run()
            samples[name].append((time.perf_counter() - start) / runs_per_turn[name])
        rounds += 1
        timings = {name: Timing(tuple(values)) for name, values in samples.items()}
        if rounds < repeats:
            continue
        settled = all(timing.stable for timing in timings.values())
        if max_seconds is None or settled or time.perf_counter() - started >= max_seconds:
            return timings


def unsettled_note(timings: Mapping[str, Timing], context: str = "") -> list[str]:
    """A note naming the candidates whose minimum did not settle (empty when all did)."""
    names = [name for name, timing in timings.items() if not timing.stable]
    if not names:
        return []
    where = f" ({context})" if context else ""
    return [
        f"Not settled{where}: {', '.join(names)}: their two fastest rounds differ by more than "
        f"{STABLE_TOLERANCE:.0%} (the machine was busy), so these minima may be too slow."
    ]
