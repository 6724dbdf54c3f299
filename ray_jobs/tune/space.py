"""The search space of a sweep: parsing ``space:`` entries, checking them against the enhancer
job's config, and turning them into Ray Tune domains.

An entry maps a dotted key of ``EnhancerJobConfig`` to one distribution, ``{KIND: [values]}``
with KIND one of :data:`DISTRIBUTIONS`; ``None`` removes a key of :data:`DEFAULT_SPACE`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from nie_core.config import ConfigError, config_from_dict, config_to_dict

from ..config import EnhancerJobConfig, TuneJobConfig

DEFAULT_SPACE: dict[str, dict[str, list]] = {
    "loss.gamma": {"uniform": [0.0, 1.0]},  # report: 0.4 (SR) and 0.1 (deblurring) lie inside
    "optim.lr": {"loguniform": [1e-5, 1e-3]},  # around EDSR's 1e-4
}
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice", "grid")
SWEEP_OWNED_KEYS = ("run.name", "run.storage_path")  # and every tracking.* key

Space = Mapping[str, tuple[str, list]]  # {dotted key: (distribution, values)}


def _flatten_space(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": {...}}}`` -> ``{"optim.lr": {...}}``. Leaves: ``None``, non-mappings,
    and distribution-shaped mappings (one key, a list value). Later entries win."""
    flat: dict[str, Any] = {}
    for key, value in space.items():
        name = f"{prefix}{key}"
        is_leaf = not isinstance(value, Mapping) or (
            len(value) == 1 and isinstance(next(iter(value.values())), list | tuple)
        )
        if is_leaf:
            flat[name] = value
        else:
            flat.update(_flatten_space(value, name + "."))
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_distribution(key: str, spec: Any) -> tuple[str, list]:
    """``(kind, values)`` of one space entry; raises ``ValueError`` naming the key."""
    shapes = ", ".join(f"{{{k}: [...]}}" for k in DISTRIBUTIONS)
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ValueError(
            f"search space key {key!r}: expected one of {shapes}, got {spec!r} "
            "(fixed values belong under job:)"
        )
    ((kind, values),) = spec.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(
            f"search space key {key!r}: unknown distribution {kind!r}; known: {list(DISTRIBUTIONS)}"
        )
    if not isinstance(values, list | tuple) or not values:
        raise ValueError(f"search space key {key!r}: {kind} needs a non-empty list, got {values!r}")
    values = list(values)
    if kind in ("uniform", "loguniform", "randint"):
        if len(values) != 2 or not all(map(_is_number, values)):
            raise ValueError(f"search space key {key!r}: {kind} needs [low, high], got {values}")
        low, high = values
        if kind == "randint" and not all(isinstance(v, int) for v in values):
            raise ValueError(f"search space key {key!r}: randint needs integers, got {values}")
        if low > high or (kind != "randint" and low == high):
            raise ValueError(f"search space key {key!r}: {kind} needs low < high, got {values}")
        if kind == "loguniform" and low <= 0:
            raise ValueError(f"search space key {key!r}: loguniform needs low > 0, got {values}")
    return kind, values


def search_space(cfg: TuneJobConfig) -> dict[str, tuple[str, list]]:
    """The sweep's space as ``{dotted key: (distribution, values)}``: the default gamma/lr space
    updated with ``cfg.space`` (``None`` removes a key).

    Raises ``ValueError`` for a malformed distribution or an empty space.
    """
    merged: dict[str, Any] = dict(DEFAULT_SPACE)
    for key, spec in _flatten_space(cfg.space).items():
        if spec is None:
            merged.pop(key, None)
        else:
            merged[key] = spec
    if not merged:
        raise ValueError(
            "empty search space: every key was removed (space: "
            f"{dict(cfg.space)!r}); name at least one key to sample, e.g. "
            "space.loss.gamma='{uniform: [0, 1]}'"
        )
    return {key: _check_distribution(key, spec) for key, spec in merged.items()}


def _probe_values(kind: str, values: list) -> list:
    """Values a distribution can produce that are worth type-checking (its ends, its options)."""
    if kind in ("uniform", "loguniform"):
        return [float(values[0]), float(values[1])]
    return list(values)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (1, value) if _is_number(value) else (0, str(value))


def far_end(space: Space) -> dict[str, Any]:
    """For each key, the largest value its distribution can produce (numbers above the rest)."""
    return {k: max(_probe_values(kind, v), key=_sort_key) for k, (kind, v) in space.items()}


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(d, "loss.gamma", 0.4)`` sets ``d["loss"]["gamma"]`` (sections created)."""
    parts = key.split(".")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{'.'.join(parts[: depth + 1])!r} is {child!r}, not a section")
        node = child
    node[parts[-1]] = value


def with_params(job: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the config dict ``job`` with every dotted key of ``params`` set."""
    tree = copy.deepcopy(dict(job))
    for key, value in params.items():
        set_dotted(tree, key, value)
    return tree


def check_space_keys(space: Space, job: EnhancerJobConfig) -> None:
    """Every key must be a field of ``EnhancerJobConfig`` that the sweep does not own, and every
    value the distribution can produce must fit the field's type; raises ``ValueError``."""
    base = config_to_dict(job)
    for key, (kind, values) in space.items():
        if key in SWEEP_OWNED_KEYS or key.split(".")[0] == "tracking":
            raise ValueError(f"search space key {key!r} is set by the sweep itself")
        for value in _probe_values(kind, values):
            try:
                config_from_dict(EnhancerJobConfig, with_params(base, {key: value}))
            except (ConfigError, ValueError) as error:
                raise ValueError(f"search space key {key!r} ({kind} {values}): {error}") from None


def tune_domain(kind: str, values: list) -> Any:
    """The Ray Tune domain of one checked distribution."""
    from ray import tune

    if kind == "uniform":
        return tune.uniform(float(values[0]), float(values[1]))
    if kind == "loguniform":
        return tune.loguniform(float(values[0]), float(values[1]))
    if kind == "randint":
        return tune.randint(values[0], values[1] + 1)  # Tune's upper bound is exclusive
    if kind == "choice":
        return tune.choice(values)
    return tune.grid_search(values)
