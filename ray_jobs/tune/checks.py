"""A sweep's settings before any trial starts: the derived defaults, every check that can be
made without Ray, and the check that a rerun asks for the sweep it resumes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

import nie_tracking as tracking
from nie_core.config import ConfigError, config_from_dict, config_to_dict

from ..config import EnhancerJobConfig, TuneJobConfig
from .objectives import objective_metric, objective_weights
from .space import check_space_keys, far_end, search_space, with_params

SWEEP_FILE = "nie_sweep.yaml"  # the resolved sweep config, compared on resume


def resolve(cfg: TuneJobConfig) -> TuneJobConfig:
    """Fill in the derived defaults: the sweep name and the number of samples (8, or one pass
    over the grid when the space has grid values). Raises ``ValueError`` for a bad space."""
    name = cfg.name
    if not name:
        scales = "".join(str(s) for s in cfg.job.model.scales)
        name = f"tune-{cfg.strategy}-{cfg.job.model.name}-x{scales}-{cfg.job.data.task}"
    samples = cfg.num_samples
    if samples is None:  # grid values define the trials themselves: one pass over the grid
        has_grid = any(kind == "grid" for kind, _ in search_space(cfg).values())
        samples = 1 if has_grid else 8
    return replace(cfg, name=name, num_samples=samples)


def _scorer_configured(job: EnhancerJobConfig) -> bool:
    return job.loss.nima_checkpoint is not None or job.loss.allow_untrained_nima


def check(cfg: TuneJobConfig) -> dict[str, tuple[str, list]]:
    """Everything that can be checked before a trial starts; returns the search space.

    Raises ``ValueError`` for an empty space, unknown or mistyped keys, unknown objectives,
    objectives no trial would report (NIMA without a scorer), and bad sweep settings.
    """
    from ..enhancer import check as check_job

    space = search_space(cfg)
    check_space_keys(space, cfg.job)
    if cfg.strategy == "grid":
        random_keys = [k for k, (kind, _) in space.items() if kind != "grid"]
        if random_keys:
            raise ValueError(
                f"strategy 'grid' needs {{grid: [...]}} for every space key; {random_keys} are "
                "sampled at random (give them grid values, or drop them with KEY: null)"
            )
    if cfg.strategy == "pareto":
        grid_keys = [k for k, (kind, _) in space.items() if kind == "grid"]
        if grid_keys:
            raise ValueError(
                f"strategy 'pareto' samples with Optuna, which takes no grid values: {grid_keys}; "
                "use {choice: [...]} instead"
            )
        if len(set(map(objective_metric, cfg.pareto_objectives))) != 2:
            raise ValueError(
                f"pareto_objectives must name two different metrics, got {cfg.pareto_objectives}"
            )
    needed = set(objective_weights(cfg.objective))
    if cfg.strategy == "pareto":
        needed |= {objective_metric(name) for name in cfg.pareto_objectives}
    if "val_nima_mean" in needed and not _scorer_configured(cfg.job):
        raise ValueError(
            "objective 'nima' (val_nima_mean) is reported by no trial: the job has no NIMA "
            "scorer; set job.loss.nima_checkpoint (or job.loss.allow_untrained_nima=true)"
        )
    for name, value, low in (
        ("num_samples", cfg.num_samples, 1),
        ("max_concurrent_trials", cfg.max_concurrent_trials, 1),
        ("asha_grace_epochs", cfg.asha_grace_epochs, 1),
        ("asha_reduction_factor", cfg.asha_reduction_factor, 2),
    ):
        if value is not None and value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if cfg.trial_cpus < 0:
        raise ValueError(f"trial_cpus must be >= 0, got {cfg.trial_cpus}")
    if cfg.strategy == "asha" and cfg.asha_grace_epochs > cfg.job.run.epochs:
        raise ValueError(
            f"asha_grace_epochs ({cfg.asha_grace_epochs}) exceeds job.run.epochs "
            f"({cfg.job.run.epochs})"
        )
    # The data, the scorer and the gamma/scorer pairing, at the far end of every distribution.
    extremes = far_end(space)
    probe = with_params(config_to_dict(cfg.job), extremes)
    try:
        check_job(config_from_dict(EnhancerJobConfig, probe))
    except ValueError as error:
        shown = ", ".join(f"{k}={v}" for k, v in extremes.items())
        raise ValueError(f"a trial with {shown} would fail: {error}") from None
    return space


def check_same_sweep(sweep_dir: Path, cfg: TuneJobConfig) -> None:
    """A rerun must ask for the same sweep: Tune cannot change a sweep's space on resume.

    The first call writes the resolved sweep config to ``sweep_dir/SWEEP_FILE``; a later one
    raises ``ValueError`` naming the settings that differ from it.
    """
    stored_file = sweep_dir / SWEEP_FILE
    current = config_to_dict(cfg)
    if not stored_file.exists():
        sweep_dir.mkdir(parents=True, exist_ok=True)
        stored_file.write_text(yaml.safe_dump(current, sort_keys=False), encoding="utf-8")
        return
    stored = yaml.safe_load(stored_file.read_text(encoding="utf-8")) or {}
    try:  # in today's form (keys an older version saved, and has since removed, drop out)
        stored = config_to_dict(config_from_dict(TuneJobConfig, stored))
    except ConfigError:
        pass  # compared as written: the difference names the keys
    old, new = tracking.flatten(stored), tracking.flatten(current)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise ValueError(
            f"sweep {cfg.name!r} in {str(sweep_dir)!r} was started with other settings "
            f"(changed: {', '.join(changed)}); rerun it unchanged to resume, or give the sweep a new name"
        )
