"""Which output may be called "best": one rule, used by the service's page and by ``nie demo``'s
verdict on the hybrid model (which ``nie enhance`` follows).

A model trained against a learned scorer (NIMA in the hybrid loss) can raise that score while
the output gets worse by every other measure (faint patterns painted on smooth areas). So no
single judge crowns an output: an output earns the "best" badge only when NO judge rates it
worse than any alternative by more than that judge's tolerance. When a judge disagrees, the
verdict says so in one sentence, e.g. "NIMA prefers hybrid over baseline (5.61 vs 5.53), but
NIQE rates it worse (5.27 vs 5.21)".

Directions and tolerances live in :data:`JUDGES`, the one table. Values are whatever the caller
measured (per image, or means over images); a judge whose value is missing (None or NaN) for
either output of a pair is left out of that pair's comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["JUDGES", "Judge", "Verdict", "judge_outputs", "rated_worse", "winner"]


@dataclass(frozen=True)
class Judge:
    """One measure of an output: its name in sentences, which way is better, and how large a
    difference must be before it counts (a smaller one is a tie)."""

    title: str
    higher_is_better: bool
    tolerance: float
    unit: str = ""
    digits: int = 2

    def format(self, value: float) -> str:
        return f"{value:.{self.digits}f}{self.unit}"


JUDGES: dict[str, Judge] = {
    # Tolerances are our choice: differences below them read as ties. For scale, see the
    # hybrid-minus-L2 line of the demo run recorded in docs/results/demo_summary.md.
    #
    # NIMA mean score (Talebi & Milanfar 2018), 1..10, higher better: the scorer the hybrid
    # loss optimises, so the one judge an enhancer can game. 0.05: the page shows 2 decimals.
    "nima": Judge("NIMA", True, 0.05),
    # PSNR-Y against the HR (dB), higher better; full reference, so the demo's verdict only.
    # 0.3 dB: about 7 % of mean squared error.
    "psnr_y": Judge("PSNR-Y", True, 0.3, " dB"),
    # SSIM-Y against the HR (0..1), higher better; the demo only. 0.002: the third decimal.
    "ssim_y": Judge("SSIM-Y", True, 0.002, digits=4),
    # GMSD against the HR (Xue et al. 2014; 0 = same gradients), lower better; the demo only.
    # 0.001: about 6 % of what bicubic x2 reads on scikit-image's photographs (~0.016).
    "gmsd": Judge("GMSD", False, 0.001, digits=4),
    # Artifact energy (nie_core.metrics.artifacts): dB of high-pass energy the output adds on
    # the reference's smooth 16 px tiles (the service's reference: bicubic of the input), lower
    # better. 0.1 dB: bicubic up-sampling alone reads 0-0.5 dB, a painted grating 4-8 dB.
    "artifacts": Judge("the artifact measure", False, 0.1, " dB"),
    # NIQE (Mittal et al. 2013), no reference, lower better. 0.05: the second decimal; photos
    # read about 3-6, their bicubic x2 down-and-up copies about 1.5 higher.
    "niqe": Judge("NIQE", False, 0.05),
    # LR-consistency: PSNR-Y between the input and the bicubic-downscaled output (dB), higher
    # better. 0.5 dB: values are high (bicubic x2 about 41 dB, the demo's models 51-54 dB), so
    # only a larger gap says that one output explains its input worse.
    "lr_psnr_y": Judge("LR-consistency", True, 0.5, " dB"),
}


@dataclass(frozen=True)
class Verdict:
    """Whether an output earns the "best" badge, and why (or which judge disagrees)."""

    best: bool
    reason: str


def _value(values: Mapping[str, float | None], judge: str) -> float | None:
    value = values.get(judge)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def rated_worse(judge: str, value: float, other: float) -> bool:
    """True when ``judge`` rates ``value`` worse than ``other`` by more than its tolerance."""
    spec = JUDGES[judge]
    margin = other - value if spec.higher_is_better else value - other
    return margin > spec.tolerance


def _check(values: Mapping[str, Mapping[str, float | None]]) -> None:
    if len(values) < 2:
        raise ValueError(f"judging needs at least two outputs, got {list(values)}")
    unknown = sorted({j for per_output in values.values() for j in per_output} - set(JUDGES))
    if unknown:
        raise ValueError(f"unknown judge(s) {unknown}; known: {list(JUDGES)}")


def _listing(judges: Sequence[str], pair: dict[str, tuple[float, float]]) -> tuple[str, str]:
    """('NIMA and NIQE', '(NIMA 5.61 vs 5.53; NIQE 5.21 vs 5.27)') for the sentence."""
    titles = [JUDGES[j].title for j in judges]
    names = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
    fmt = JUDGES[judges[0]].format
    if len(judges) == 1:
        a, b = pair[judges[0]]
        return names, f"({fmt(a)} vs {fmt(b)})"
    parts = [
        f"{JUDGES[j].title} {JUDGES[j].format(pair[j][0])} vs {JUDGES[j].format(pair[j][1])}"
        for j in judges
    ]
    return names, "(" + "; ".join(parts) + ")"


def _sentence(name: str, other: str, better: list[str], worse: list[str], pair) -> str:
    """The disagreement, or the plain loss, of output ``name`` against ``other``."""
    worse_names, worse_values = _listing(worse, pair)
    if better:
        better_names, better_values = _listing(better, pair)
        verb = "prefers" if len(better) == 1 else "prefer"
        rate = "rates" if len(worse) == 1 else "rate"
        text = (
            f"{better_names} {verb} {name} over {other} {better_values}, "
            f"but {worse_names} {rate} it worse {worse_values}"
        )
    else:
        rate = "rates" if len(worse) == 1 else "rate"
        text = f"{worse_names} {rate} {name} worse than {other} {worse_values}"
    return text[0].upper() + text[1:]


def judge_outputs(values: Mapping[str, Mapping[str, float | None]]) -> dict[str, Verdict]:
    """The verdict on each of two or more outputs.

    Args:
        values: output name -> {judge name (a key of :data:`JUDGES`): value}; a missing, None
            or NaN value leaves that judge out for the pairs that output is in.

    Returns:
        output name -> :class:`Verdict`, in the order given. ``best`` is True only when, against
        every other output, at least one judge compared the two and none rated this one worse
        beyond its tolerance (outputs tied within tolerance on every judge are all best). Else
        ``reason`` names the judges that rate it worse than the first output they do, and the
        judges that prefer it there, with both values of each.

    Raises:
        ValueError: fewer than two outputs, or an unknown judge name.
    """
    _check(values)
    verdicts: dict[str, Verdict] = {}
    for name, mine in values.items():
        reason, compared_with = None, []
        for other, theirs in values.items():
            if other == name:
                continue
            pair = {
                j: (a, b)
                for j in JUDGES
                if (a := _value(mine, j)) is not None and (b := _value(theirs, j)) is not None
            }
            if not pair:
                reason = f"No judge could compare {name} with {other}"
                break
            worse = [j for j, (a, b) in pair.items() if rated_worse(j, a, b)]
            if worse:
                better = [j for j, (a, b) in pair.items() if rated_worse(j, b, a)]
                reason = _sentence(name, other, better, worse, pair)
                break
            compared_with.append(other)
        if reason is not None:
            verdicts[name] = Verdict(False, reason)
        else:
            judged = [JUDGES[j].title for j in JUDGES if _value(mine, j) is not None]
            verdicts[name] = Verdict(
                True,
                f"No judge rates {name} worse than {', '.join(compared_with)} "
                f"(judges: {', '.join(judged)})",
            )
    return verdicts


def winner(verdicts: Mapping[str, Verdict]) -> str | None:
    """The one output with the badge; None when none or several (a tie) have it."""
    best = [name for name, verdict in verdicts.items() if verdict.best]
    return best[0] if len(best) == 1 else None
