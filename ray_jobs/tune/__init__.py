"""``nie tune``: Ray Tune sweeps of the enhancer job over gamma, the learning rate and more.

The report picked the hybrid loss's gamma by hand from a small grid. Here the search is a job:

- ``strategy: asha``: one objective (``psnr``, ``nima`` or a weighted sum of metrics), with
  ASHA early stopping on the epochs (Li et al. 2020, "A System for Massively Parallel
  Hyperparameter Tuning").
- ``strategy: pareto``: two objectives, both maximised, with Optuna's multi-objective sampler;
  the sweep's answer is the Pareto front of fidelity (PSNR) against aesthetics (NIMA).
- ``strategy: grid``: every ``{grid: [...]}`` combination, e.g. the report's PSNR-by-gamma figure.

Each trial is a whole ``nie train enhancer`` run (Ray Train V2 ``TorchTrainer.fit()`` inside a
Tune function trainable, metrics passed to Tune by ``TuneReportCallback``), so a trial can be a
multi-worker DDP run. Trials log to their own MLflow runs nested under the sweep's parent run
and register no model. The parent run gets the results table, the Pareto plot, the
PSNR-by-gamma plot and the best config, a YAML file ``nie train enhancer --config`` accepts.

The sweep lives in ``storage_path/name``; rerunning the same command resumes it (Tune restores
the experiment, finished trials are kept, errored and unfinished ones go on from their latest
Ray Train checkpoint).

One idea a module: :mod:`.space` (the search space), :mod:`.objectives` (what is maximised),
:mod:`.checks` (settings checked before any trial), :mod:`.stopping` (ASHA decisions the trials
carry out), :mod:`.trial` (the trainable), :mod:`.results` (table, plots, best config) and
:mod:`.driver` (``run_tune``, ``nie tune``). Their public names are all importable from here.
"""

from .checks import SWEEP_FILE, check, check_same_sweep, resolve

# The tuner.pkl of a sweep started while this package was one module names its trial-name
# creator ray_jobs.tune._trial_dirname (and its scheduler ray_jobs.tune.CooperativeASHA), so
# both stay importable here for such a sweep to resume.
from .driver import (
    TRIAL_MEMORY,
    TuneResult,
    _trial_dirname,  # noqa: F401
    run_cli,
    run_tune,
)
from .objectives import (
    OBJECTIVE_KEY,
    OBJECTIVE_METRICS,
    describe_objective,
    objective_metric,
    objective_weights,
)
from .results import (
    BEST_FILE,
    GAMMA_PLOT,
    PARETO_PLOT,
    TABLE_FILE,
    TABLE_METRICS,
    SweepFiles,
    best_row,
    collect_rows,
    write_best_config,
    write_plots,
    write_results,
    write_table,
)
from .space import (
    DEFAULT_SPACE,
    DISTRIBUTIONS,
    check_space_keys,
    far_end,
    search_space,
    set_dotted,
    tune_domain,
    with_params,
)
from .stopping import (
    DECISION_TIMEOUT_S,
    STOP_MARKER,
    CooperativeASHA,
    ObjectiveReportCallback,
    name_of_trial,
)
from .trial import PATH_KEYS, run_trial, trial_job

__all__ = [
    "BEST_FILE",
    "DECISION_TIMEOUT_S",
    "DEFAULT_SPACE",
    "DISTRIBUTIONS",
    "GAMMA_PLOT",
    "OBJECTIVE_KEY",
    "OBJECTIVE_METRICS",
    "PARETO_PLOT",
    "PATH_KEYS",
    "STOP_MARKER",
    "SWEEP_FILE",
    "TABLE_FILE",
    "TABLE_METRICS",
    "TRIAL_MEMORY",
    "CooperativeASHA",
    "ObjectiveReportCallback",
    "SweepFiles",
    "TuneResult",
    "best_row",
    "check",
    "check_same_sweep",
    "check_space_keys",
    "collect_rows",
    "describe_objective",
    "far_end",
    "name_of_trial",
    "objective_metric",
    "objective_weights",
    "resolve",
    "run_cli",
    "run_trial",
    "run_tune",
    "search_space",
    "set_dotted",
    "trial_job",
    "tune_domain",
    "with_params",
    "write_best_config",
    "write_plots",
    "write_results",
    "write_table",
]
