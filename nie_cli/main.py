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
from typing import Any

EXAMPLES = """\
examples:
  nie data sample data/sample                         build the bundled sample datasets
  nie data photos data/photos                         DIV2K-layout set of real photographs
  nie train nima --config ray_jobs/recipes/nima_sample.yaml
  nie train enhancer --config ray_jobs/recipes/edsr_sample.yaml loss.gamma=0.4
  nie tune --config ray_jobs/recipes/tune_sample.yaml
  nie serve --config serve_app/serve_config.yaml
  nie enhance data/photos/DIV2K/DIV2K_valid_LR_bicubic/X2/0801x2.png --out enhanced/
                                                      (the demo's hybrid model if it passed the
                                                      judges, else its L2 model, else the zoo's)
  nie score data/photos/DIV2K/DIV2K_valid_HR/0801.png  (the zoo's NIMA)
  nie demo --no-serve
  nie report --out runs/report
  nie eval --model zoo:edsr_baseline-x2@nie-photos --data data/photos/DIV2K/DIV2K_valid_HR
  nie zoo list
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _entry(module: str, function: str) -> Callable[[argparse.Namespace], int | None]:
    """A handler that imports ``module`` lazily and calls ``function(args)``."""

    def run(args: argparse.Namespace) -> int | None:
        return getattr(importlib.import_module(module), function)(args)

    run.__qualname__ = f"{module}.{function}"  # what it runs, for messages and tests
    return run


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML recipe (see ray_jobs/recipes/)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides of the recipe, e.g. loss.gamma=0.4 train.epochs=3",
    )


def _command(
    parent: argparse._SubParsersAction, name: str, *, handler: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """Sub-command ``name`` of ``parent``, run by ``handler`` ("module:function", imported only
    when the command runs)."""
    command = parent.add_parser(name, formatter_class=_Formatter, **kwargs)
    command.set_defaults(handler=_entry(*handler.split(":")))
    return command


def _data_action(
    data_sub: argparse._SubParsersAction, name: str, help: str, out_help: str, seed_help: str
) -> argparse.ArgumentParser:
    """``nie data NAME DIR [--seed N] [--force]``, run by ``nie_cli.data.run_NAME``."""
    action = _command(data_sub, name, help=help, handler=f"nie_cli.data:run_{name}")
    action.add_argument("out_dir", metavar="DIR", help=out_help)
    action.add_argument("--seed", type=int, default=0, help=seed_help)
    action.add_argument("--force", action="store_true", help="rebuild even if up to date")
    return action


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

    # nie data sample|photos|ratings DIR
    data = sub.add_parser("data", help="build datasets", formatter_class=_Formatter)
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    _data_action(
        data_sub, "sample",
        "write the small DIV2K- and AVA-layout sample sets built from scikit-image photos",
        "where to write DIV2K/ and AVA/", "seed of the synthetic ratings",
    )  # fmt: skip
    photos = _data_action(
        data_sub, "photos",
        "write a DIV2K-layout set of real photographs (scikit-image + Debian's lomiri-wallpapers "
        "packages, fetched with apt-get download)",
        "where to write DIV2K/ and manifest.json", "offset of a fraction-based split",
    )  # fmt: skip
    photos.add_argument(
        "--debs-dir",
        default="~/.cache/nie/debs",
        metavar="DIR",
        help="where the wallpaper packages are downloaded and unpacked",
    )
    photos.add_argument(
        "--hr-long-side", type=int, default=1020, help="longest HR side, a multiple of 12"
    )
    photos.add_argument(
        "--valid-fraction",
        type=float,
        default=None,
        help="validate on every k-th photo (about this fraction); None: the curated choice",
    )
    ratings = _data_action(
        data_sub, "ratings",
        "write SYNTHETIC technical-quality ratings (clean vs bicubic x2/x3/x4, blur, noise, "
        "JPEG, contrast) of crops of a photo set, for training the zoo's NIMA",
        "where to write ratings.csv and images/", "seed of the crops and noise",
    )  # fmt: skip
    ratings.add_argument(
        "--photos", default="data/photos/DIV2K", help="DIV2K-layout photo set (nie data photos)"
    )
    ratings.add_argument("--crop", type=int, default=168, help="side of the rated crops (px)")
    ratings.add_argument("--crops-per-photo", type=int, default=10, help="crops per photograph")
    ratings.add_argument(
        "--levels", nargs="+", metavar="LEVEL", help="only these degradation levels (default: all)"
    )
    ratings.add_argument(
        "--rate-outputs", action="append", default=[], metavar="NAME=MODEL:SCORE",
        help="also rate the x2 outputs of an enhancer (checkpoint or zoo: URI) at SCORE, e.g. "
        "gamed=runs/demo-edsr_baseline-x2-gamed/best:4.4 (scorer hardening; repeatable)",
    )  # fmt: skip

    # nie train nima|enhancer
    train = _command(
        sub, "train", help="train NIMA or an enhancer (EDSR/MDSR) with Ray Train",
        description="Train on Ray Train (DDP). Starts an embedded local Ray unless RAY_ADDRESS "
        "points at a cluster. Rerunning with the same run name resumes from the latest "
        "checkpoint.",
        handler="ray_jobs.train:run_cli",
    )  # fmt: skip
    train.add_argument("job", choices=["nima", "enhancer"], help="which network to train")
    _add_config_args(train)

    # nie tune
    tune = _command(
        sub, "tune", help="Ray Tune sweep of gamma and learning rate (PSNR / NIMA objectives)",
        handler="ray_jobs.tune:run_cli",
    )  # fmt: skip
    _add_config_args(tune)

    # nie serve
    serve = _command(
        sub, "serve", help="serve the enhance-and-score HTTP API and web page with Ray Serve",
        handler="nie_cli.serve:run_serve",
    )  # fmt: skip
    serve.add_argument("--config", metavar="FILE", help="service config (YAML)")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP host")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port")
    serve.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides of the "
                       "service config, e.g. allow_untrained=true tile_size=128")  # fmt: skip

    # nie enhance / nie score (no server needed)
    enhance = _command(
        sub, "enhance", help="enhance images in-process (same code path as the service)",
        handler="nie_cli.enhance:run_enhance",
    )  # fmt: skip
    enhance.add_argument("images", nargs="+", metavar="IMAGE")
    enhance.add_argument(
        "--model",
        default=None,
        help="zoo:MODEL[-xS]@TAG, checkpoint path/dir, models:/NAME@ALIAS, or a model name "
        "(default: the hybrid model `nie demo` registered if the demo's verdict says it passed "
        "the judges, else its L2 model, else zoo:edsr_baseline-x2@nie-photos; a line on stderr "
        "says which and why)",
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

    score = _command(
        sub, "score", help="print the NIMA mean and std score of images",
        handler="nie_cli.enhance:run_score",
    )  # fmt: skip
    score.add_argument("images", nargs="+", metavar="IMAGE")
    score.add_argument("--model", help="NIMA checkpoint path/dir or models:/NAME@ALIAS")
    score.add_argument(
        "--allow-untrained", action="store_true", help="accept a random-weight scorer (tests)"
    )

    # nie demo
    demo = _command(
        sub, "demo", help="the main job: photographs -> the zoo EDSR fine-tuned (L2, gaming probe) "
        "-> NIMA hardened -> hybrid with remedies -> gamma sweep -> summary -> serve",
        handler="nie_cli.demo:run_cli",
    )  # fmt: skip
    demo.add_argument("--workdir", default=".", help="where data/, runs/ and mlflow.db go")
    demo.add_argument("--no-serve", action="store_true", help="exit after training and print")
    demo.add_argument(
        "--fast", action="store_true", help="tiny settings (seconds, for tests and smoke runs)"
    )
    demo.add_argument("--port", type=int, default=8000, help="HTTP port of the service")
    demo.add_argument(
        "--verbose",
        action="store_true",
        help="show Ray's and MLflow's own lines too (also NIE_VERBOSE=1); runs/demo.log "
        "always has them",
    )

    # nie eval
    evaluate = _command(
        sub, "eval", help="measure a model on a folder of HR photographs (PSNR-Y, SSIM-Y, NIQE, "
        "LR-consistency, NIMA; bicubic and reference beside it)",
        description="Measure an enhancer against bicubic upsampling on any folder of HR "
        "photographs (LR made on the fly with the project's bicubic), or check that a NIMA "
        "scorer ranks each reference above its x2 and x4 bicubic copies. Writes results.md and "
        "results.json (date, machine, protocol).",
        handler="nie_cli.evaluate:run_eval",
    )  # fmt: skip
    evaluate.add_argument(
        "--model",
        default="zoo:edsr_baseline-x2@nie-photos",
        help="zoo:MODEL[-xS]@TAG, a checkpoint path/dir or models:/NAME@ALIAS",
    )
    evaluate.add_argument("--data", required=True, metavar="FOLDER", help="HR images")
    evaluate.add_argument("--scale", type=int, default=None, help="scale (default: the model's)")
    evaluate.add_argument("--scorer", default="zoo:nima@nie-quality", help="NIMA for the scores")
    evaluate.add_argument("--no-nima", action="store_true", help="skip the NIMA column")
    evaluate.add_argument(
        "--crop", type=int, default=None, help="centre crop of each HR image (px; default whole)"
    )
    evaluate.add_argument("--max-images", type=int, default=None, help="first N images only")
    evaluate.add_argument("--out", default=None, metavar="DIR", help="default eval/<model>")

    # nie zoo list|export
    zoo = sub.add_parser("zoo", help="the shipped model zoo", formatter_class=_Formatter)
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True, metavar="ACTION")
    _command(
        zoo_sub, "list", help="list the zoo's models and their cards",
        handler="nie_cli.zoo:run_list",
    )  # fmt: skip
    export = _command(
        zoo_sub, "export", help="write a trained checkpoint into the zoo (float16) with its model card",
        handler="nie_cli.zoo:run_export",
    )  # fmt: skip
    export.add_argument("checkpoint", help="checkpoint file or run folder (e.g. runs/NAME/best)")
    export.add_argument(
        "--uri", required=True, help="zoo entry, e.g. zoo:edsr_baseline-x2@nie-photos"
    )
    export.add_argument("--recipe", required=True, help="recipe file it was trained with")
    export.add_argument("--eval", default=None, metavar="JSON", help="nie eval results.json")
    export.add_argument("--command", default=None, help="the retraining command, for the card")
    export.add_argument("--note", default=None, help="a remark added to the card, e.g. on timing")

    # nie report
    report = _command(
        sub, "report", help="the report's figures (PSNR by gamma, EDSR vs MDSR by epoch, output grid)",
        handler="ray_jobs.report:run_cli",
    )  # fmt: skip
    report.add_argument("--out", default="report", metavar="DIR", help="output folder")
    report.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
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
        # Long-running commands stop their Ray processes and mark their runs first
        # (nie_cli.interrupt, serve_app.shutdown); rerunning the same command resumes.
        print(f"nie {args.command}: stopped by Ctrl-C", file=sys.stderr)
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
