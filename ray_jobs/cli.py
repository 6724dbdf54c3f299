"""The ``nie`` command line.

Every sub-command's arguments are declared here (so ``nie --help`` is instant and complete) and
its implementation is imported only when it runs: ``nie score`` never pays for importing Ray.

User errors (a bad path, an unknown key, an unknown model, ...) end the command with exit status 2
and one line naming the problem; set ``NIE_DEBUG=1`` to see the traceback as well.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

EXAMPLES = """\
examples:
  nie data sample data/sample                         build the bundled sample datasets
  nie train nima --config ray_jobs/recipes/nima_sample.yaml
  nie train enhancer --config ray_jobs/recipes/edsr_sample.yaml loss.gamma=0.4
  nie tune --config ray_jobs/recipes/tune_sample.yaml
  nie serve --config serve_app/serve_config.yaml
  nie enhance photo.png --model runs/edsr/checkpoint.pt --out enhanced/
  nie score photo.png other.jpg --model runs/nima/checkpoint.pt
  nie demo --no-serve
  nie report --out report/
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _entry(module: str, function: str) -> Callable[[argparse.Namespace], int | None]:
    """A handler that imports ``module`` lazily and calls ``function(args)``."""

    def run(args: argparse.Namespace) -> int | None:
        return getattr(importlib.import_module(module), function)(args)

    return run


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML recipe (see ray_jobs/recipes/)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides of the recipe, e.g. loss.gamma=0.4 train.epochs=3",
    )


def _run_sample(args: argparse.Namespace) -> int:
    from nie_core.data.sample import build_sample_data

    paths = build_sample_data(args.out_dir, seed=args.seed, force=args.force)
    print(f"sample data ready: DIV2K layout in {paths['div2k']}, AVA layout in {paths['ava']}")
    print("note: the AVA ratings of the sample set are synthetic (from controlled degradations)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``nie`` argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="nie",
        description="Neural Image Enhancement: train, tune, serve and evaluate EDSR/MDSR models "
        "whose loss also rewards aesthetic quality (NIMA).",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # nie data sample DIR
    data = sub.add_parser("data", help="build datasets", formatter_class=_Formatter)
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    sample = data_sub.add_parser(
        "sample",
        help="write the small DIV2K- and AVA-layout sample sets built from scikit-image photos",
        formatter_class=_Formatter,
    )
    sample.add_argument("out_dir", metavar="DIR", help="where to write DIV2K/ and AVA/")
    sample.add_argument("--seed", type=int, default=0, help="seed of the synthetic ratings")
    sample.add_argument("--force", action="store_true", help="rebuild even if up to date")
    sample.set_defaults(handler=_run_sample)

    # nie train nima|enhancer
    train = sub.add_parser(
        "train",
        help="train NIMA or an enhancer (EDSR/MDSR) with Ray Train",
        description="Train on Ray Train (DDP). Starts an embedded local Ray unless RAY_ADDRESS "
        "points at a cluster. Rerunning with the same run name resumes from the latest "
        "checkpoint.",
        formatter_class=_Formatter,
    )
    train.add_argument("job", choices=["nima", "enhancer"], help="which network to train")
    _add_config_args(train)
    train.set_defaults(handler=_entry("ray_jobs.train", "run_cli"))

    # nie tune
    tune = sub.add_parser(
        "tune",
        help="Ray Tune sweep of gamma and learning rate (PSNR / NIMA objectives)",
        formatter_class=_Formatter,
    )
    _add_config_args(tune)
    tune.set_defaults(handler=_entry("ray_jobs.tune", "run_cli"))

    # nie serve
    serve = sub.add_parser(
        "serve",
        help="serve the enhance-and-score HTTP API and web page with Ray Serve",
        formatter_class=_Formatter,
    )
    serve.add_argument("--config", metavar="FILE", help="service config (YAML)")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP host")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port")
    serve.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides of the service config, e.g. allow_untrained=true tile_size=128",
    )
    serve.set_defaults(handler=_entry("serve_app.cli", "run_serve"))

    # nie enhance / nie score (no server needed)
    enhance = sub.add_parser(
        "enhance",
        help="enhance images in-process (same code path as the service)",
        formatter_class=_Formatter,
    )
    enhance.add_argument("images", nargs="+", metavar="IMAGE")
    enhance.add_argument(
        "--model", required=True, help="checkpoint path/dir, models:/NAME@ALIAS, or a model name"
    )
    enhance.add_argument("--out", required=True, metavar="DIR", help="output folder")
    enhance.add_argument("--scale", type=int, default=None, help="scale for MDSR models")
    enhance.add_argument("--tile-size", type=int, default=256, help="tile size in input pixels")
    enhance.add_argument("--ensemble", action="store_true", help="x8 geometric self-ensemble")
    enhance.add_argument("--no-fast", action="store_true", help="disable bf16/channels_last")
    enhance.add_argument(
        "--allow-untrained",
        action="store_true",
        help="accept random weights (a bare architecture name such as edsr_baseline)",
    )
    enhance.set_defaults(handler=_entry("serve_app.cli", "run_enhance"))

    score = sub.add_parser(
        "score",
        help="print the NIMA mean and std score of images",
        formatter_class=_Formatter,
    )
    score.add_argument("images", nargs="+", metavar="IMAGE")
    score.add_argument("--model", help="NIMA checkpoint path/dir or models:/NAME@ALIAS")
    score.add_argument(
        "--allow-untrained", action="store_true", help="accept a random-weight scorer (tests)"
    )
    score.set_defaults(handler=_entry("serve_app.cli", "run_score"))

    # nie demo
    demo = sub.add_parser(
        "demo",
        help="the main job: sample data -> NIMA -> EDSR (L2, hybrid) -> sweep -> serve",
        formatter_class=_Formatter,
    )
    demo.add_argument("--workdir", default=".", help="where data/, runs/ and mlflow.db go")
    demo.add_argument("--no-serve", action="store_true", help="exit after training and print")
    demo.add_argument(
        "--fast", action="store_true", help="tiny settings (seconds, for tests and smoke runs)"
    )
    demo.add_argument("--port", type=int, default=8000, help="HTTP port of the service")
    demo.set_defaults(handler=_entry("ray_jobs.demo", "run_cli"))

    # nie report
    report = sub.add_parser(
        "report",
        help="the report's figures (PSNR by gamma, EDSR vs MDSR by epoch, output grid)",
        formatter_class=_Formatter,
    )
    report.add_argument("--out", default="report", metavar="DIR", help="output folder")
    report.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    report.set_defaults(handler=_entry("ray_jobs.report", "run_cli"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nie`` console script; returns the exit status."""
    parser = build_parser()
    # Overrides may follow options (`nie train enhancer --config X loss.gamma=0.4`); argparse
    # stops filling a positional list once an option follows the first positional.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in w and not w.startswith("-") for w in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        status = args.handler(args)
    except KeyboardInterrupt:
        print("nie: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        if os.environ.get("NIE_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"nie {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
