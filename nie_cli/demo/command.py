"""``nie demo``'s handler: the demo, its summary on the terminal, then the service until Ctrl-C;
the full log goes to ``runs/demo.log``."""

from __future__ import annotations

import argparse
from pathlib import Path

from nie_cli.demo.guide import (
    dashboard_sign_in,
    mlflow_ui_command,
    next_commands,
    ray_dashboard_url,
    relative_to_cwd,
)
from nie_cli.demo.pipeline import log, run_demo
from nie_cli.demo.service import start_demo_service
from nie_cli.demo.summary import SUMMARY_MARKDOWN
from ray_jobs.progress import format_seconds

LOG_FILE = "demo.log"  # in runs/: every line of every `nie demo`, appended


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``nie demo``: train (or reuse), print the summary, then serve until Ctrl-C
    (or exit with ``--no-serve``). The terminal shows NIE's own lines; everything, Ray's and
    MLflow's lines included, goes to ``runs/demo.log`` (``--verbose``: the terminal too)."""
    from nie_cli.console import log_to_file, verbose_requested

    log_path = Path(args.workdir).resolve() / "runs" / LOG_FILE
    with log_to_file(log_path, "nie demo", verbose_requested(args.verbose)):
        log(f"full log (Ray's and MLflow's lines too): {relative_to_cwd(log_path)}")
        return _run_cli(args, log_path)


def _run_cli(args: argparse.Namespace, log_path: Path) -> int:
    demo = run_demo(args.workdir, fast=args.fast)
    print()
    print(demo.summary_table)
    print("(NIMA here is the zoo's technical-quality scorer, trained on SYNTHETIC ratings.)")
    print(f"summary:  {demo.layout.runs / SUMMARY_MARKDOWN}")
    sweep = demo.stages["sweep"].result
    if sweep.get("best_trial"):
        print(f"gamma sweep: results {sweep.get('table')}, plot {sweep.get('gamma_plot')}")
    print()
    print(f"training: {format_seconds(demo.training_seconds)} in this call")
    if demo.report is not None:
        print(f"report:   {demo.report}")
    print(f"log:      {log_path}")
    print(f"MLflow:   {mlflow_ui_command(demo.layout.tracking_uri)}  (then http://127.0.0.1:5000)")
    dashboard = ray_dashboard_url()
    if dashboard:
        sign_in = dashboard_sign_in()
        print(f"Ray:      {dashboard}" + (f"  ({sign_in})" if sign_in else ""))
    print("next:")
    for line in next_commands(demo, served=not args.no_serve):
        print(f"  {line}")
    if args.no_serve:
        return 0
    from serve_app.shutdown import say, serve_until_interrupted

    url = start_demo_service(demo, port=args.port)
    print(f"web page: {url}/   (API docs: {url}/docs)")
    print("serving until Ctrl-C", flush=True)
    serve_until_interrupted("the demo's service")
    say("nie demo: stopped; the service and Ray have shut down")
    return 0
