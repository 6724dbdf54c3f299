"""``nie demo``: the whole project on one machine, in one command.

1. data     real photographs in the DIV2K layout (``nie data photos``: scikit-image and Debian's
            lomiri-wallpapers packages) -> ``WORKDIR/data/photos``, and 384 px centre crops of
            its validation photographs
2. Ray      an embedded local cluster with its dashboard (or the cluster this process, or
            ``$RAY_ADDRESS``, already points at)
3. training three jobs from ``ray_jobs/recipes/demo_*.yaml``, every one fine-tuned from the
            same zoo checkpoint (``edsr_baseline`` x2, ``nie-photos``) for the same steps:
            the L2 loss, the hybrid loss with the zoo's technical-quality NIMA
            (``zoo:nima@nie-quality``, frozen), and a grid sweep over gamma (Ray Tune); all
            tracked in ``WORKDIR/mlflow.db``, the models registered there
4. summary  bicubic, L2, hybrid and the reference on the validation crops: PSNR-Y, SSIM-Y,
            NIMA, and two judges the hybrid loss never saw, NIQE and LR-consistency, as mean
            and standard deviation (``WORKDIR/runs/demo_summary.{md,json}``, date and machine)
5. report   ``nie report`` -> ``WORKDIR/runs/report/report.md`` (the summary included)
6. service  the web page and HTTP API with both models, until Ctrl-C (not with ``--no-serve``)

A second call reuses what the first built: a training stage is skipped when its folder
``WORKDIR/runs/NAME`` holds the finished result (``best/``, or the sweep's table) and a marker
file with the hash of the stage's resolved config (and of the scorer it uses). An interrupted
stage resumes from its latest checkpoint; a stage whose settings changed starts afresh.
``--fast`` uses the bundled sample set and a few steps per job (seconds; the tests).

The package, a file per idea: ``layout`` (where things go, the stages' configs), ``stages``
(reuse/resume of a stage), ``pipeline`` (:func:`run_demo`), ``summary``, ``service``, ``guide``
(what to open and type next) and ``command`` (the ``nie demo`` handler).
"""

from nie_cli.demo.command import LOG_FILE, run_cli
from nie_cli.demo.guide import dashboard_sign_in, next_commands, ray_dashboard_url
from nie_cli.demo.layout import SCORER, DemoLayout
from nie_cli.demo.pipeline import DemoResult, run_demo
from nie_cli.demo.service import demo_service_config, start_demo_service
from nie_cli.demo.stages import StageResult, config_hash, run_stage
from nie_cli.demo.summary import SUMMARY_FILE, SUMMARY_MARKDOWN, demo_summary

__all__ = [
    "LOG_FILE",
    "SCORER",
    "SUMMARY_FILE",
    "SUMMARY_MARKDOWN",
    "DemoLayout",
    "DemoResult",
    "StageResult",
    "config_hash",
    "dashboard_sign_in",
    "demo_service_config",
    "demo_summary",
    "next_commands",
    "ray_dashboard_url",
    "run_cli",
    "run_demo",
    "run_stage",
    "start_demo_service",
]
