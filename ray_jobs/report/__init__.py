"""``nie report``: the report's figures, rebuilt from the runs in an MLflow store.

For each task found (super-resolution ``sr``, deblurring ``deblur``) it writes three PNGs and
one Markdown page (``report.md``) that shows them with their numbers:

- PSNR (Y) by gamma, the weight of the aesthetic loss (the report's Figures 4 and 7): every
  finished enhancer run, sweep trials grouped by sweep, bicubic as a dashed line;
- validation PSNR (Y) and training loss by epoch, one line per (non-sweep) enhancer run labelled
  by its model, e.g. EDSR against MDSR (Figures 5 and 8);
- the output assessment (Figures 6 and 9): the same crops of validation images from bicubic
  upsampling (or the blurred input), the baseline model (gamma = 0) and the hybrid model
  (gamma > 0), next to the reference, each with its PSNR (Y) and NIMA mean score (Talebi &
  Milanfar 2018) of the whole image.

One idea a module: ``store`` (the runs MLflow holds and which of them are shown), ``sources``
(the models, scorer and images of the assessment), ``assess`` (the assessment's numbers),
``figures`` (the PNGs), ``page`` (``report.md`` and :func:`build_report`), ``cli`` (the
``nie report`` handler). This package re-exports their public names.
"""

from .assess import ImageAssessment, assess_outputs, format_summary_table, mean_assessment
from .cli import run_cli
from .figures import plot_output_grid, plot_psnr_by_gamma, plot_training_curves
from .page import ENHANCER_METHODS, ReportResult, assessment_table, build_report
from .sources import load_report_scorer, load_run_model, run_model_source, validation_set
from .store import (
    EnhancerRun,
    TrainingCurve,
    enhancer_runs,
    gamma_rows,
    latest_runs,
    pick_comparison,
    training_curve,
)

__all__ = [
    "ENHANCER_METHODS",
    "EnhancerRun",
    "ImageAssessment",
    "ReportResult",
    "TrainingCurve",
    "assess_outputs",
    "assessment_table",
    "build_report",
    "enhancer_runs",
    "format_summary_table",
    "gamma_rows",
    "latest_runs",
    "load_report_scorer",
    "load_run_model",
    "mean_assessment",
    "pick_comparison",
    "plot_output_grid",
    "plot_psnr_by_gamma",
    "plot_training_curves",
    "run_cli",
    "run_model_source",
    "training_curve",
    "validation_set",
]
