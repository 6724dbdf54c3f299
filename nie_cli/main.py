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
  nie data photos data/photos                         DIV2K-layout set of real photographs
  nie train nima --config ray_jobs/recipes/nima_sample.yaml
  nie train enhancer --config ray_jobs/recipes/edsr_sample.yaml loss.gamma=0.4
  nie tune --config ray_jobs/recipes/tune_sample.yaml
  nie serve --config serve_app/serve_config.yaml
  nie enhance data/photos/DIV2K/DIV2K_valid_LR_bicubic/X2/0801x2.png --out enhanced/
                                                      (the demo's hybrid model, else the zoo's)
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


def _run_photos(args: argparse.Namespace) -> int:
    from nie_core.data.photos import build_photo_set

    summary = build_photo_set(
        args.out_dir,
        sources_dir=args.debs_dir,
        hr_long_side=args.hr_long_side,
        valid_fraction=args.valid_fraction,
        seed=args.seed,
        force=args.force,
    )
    print(
        f"photo set ready: {summary['n_train']} train + {summary['n_valid']} valid photographs "
        f"({summary['hr_pixels'] / 1e6:.1f} MP of HR) in the DIV2K layout in {summary['div2k']}; "
        f"sources and licences in {summary['manifest']}"
    )
    return 0


def _run_ratings(args: argparse.Namespace) -> int:
    from nie_core.data.quality_ratings import build_quality_ratings

    paths = build_quality_ratings(
        args.photos, args.out_dir, crop=args.crop, crops_per_photo=args.crops_per_photo,
        seed=args.seed, force=args.force,
    )  # fmt: skip
    print(f"ratings ready: {paths['csv']} (validation rows in {paths['split_file']})")
    print("note: these ratings are SYNTHETIC (set by the degradation), not human votes")
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

    # nie data sample|photos DIR
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

    # nie data photos DIR
    photos = data_sub.add_parser(
        "photos",
        help="write a DIV2K-layout set of real photographs (scikit-image + Debian's "
        "lomiri-wallpapers packages, fetched with apt-get download)",
        formatter_class=_Formatter,
    )
    photos.add_argument("out_dir", metavar="DIR", help="where to write DIV2K/ and manifest.json")
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
    photos.add_argument("--seed", type=int, default=0, help="offset of a fraction-based split")
    photos.add_argument("--force", action="store_true", help="rebuild even if up to date")
    photos.set_defaults(handler=_run_photos)

    # nie data ratings DIR
    ratings = data_sub.add_parser(
        "ratings",
        help="write SYNTHETIC technical-quality ratings (clean vs bicubic x2/x3/x4, blur, noise, "
        "JPEG, contrast) of crops of a photo set, for training the zoo's NIMA",
        formatter_class=_Formatter,
    )
    ratings.add_argument("out_dir", metavar="DIR", help="where to write ratings.csv and images/")
    ratings.add_argument(
        "--photos", default="data/photos/DIV2K", help="DIV2K-layout photo set (nie data photos)"
    )
    ratings.add_argument("--crop", type=int, default=168, help="side of the rated crops (px)")
    ratings.add_argument("--crops-per-photo", type=int, default=10, help="crops per photograph")
    ratings.add_argument("--seed", type=int, default=0, help="seed of the crops and noise")
    ratings.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ratings.set_defaults(handler=_run_ratings)

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
    serve.set_defaults(handler=_entry("nie_cli.serve", "run_serve"))

    # nie enhance / nie score (no server needed)
    enhance = sub.add_parser(
        "enhance",
        help="enhance images in-process (same code path as the service)",
        formatter_class=_Formatter,
    )
    enhance.add_argument("images", nargs="+", metavar="IMAGE")
    enhance.add_argument(
        "--model",
        default=None,
        help="zoo:MODEL[-xS]@TAG, checkpoint path/dir, models:/NAME@ALIAS, or a model name "
        "(default: the hybrid model `nie demo` registered, else zoo:edsr_baseline-x2@nie-photos)",
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
    enhance.set_defaults(handler=_entry("nie_cli.enhance", "run_enhance"))

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
    score.set_defaults(handler=_entry("nie_cli.enhance", "run_score"))

    # nie demo
    demo = sub.add_parser(
        "demo",
        help="the main job: photographs -> the zoo EDSR fine-tuned (L2, hybrid) -> gamma sweep -> "
        "summary -> serve",
        formatter_class=_Formatter,
    )
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
    demo.set_defaults(handler=_entry("nie_cli.demo", "run_cli"))

    # nie eval
    evaluate = sub.add_parser(
        "eval",
        help="measure a model on a folder of HR photographs (PSNR-Y, SSIM-Y, NIQE, "
        "LR-consistency, NIMA; bicubic and reference beside it)",
        description="Measure an enhancer against bicubic upsampling on any folder of HR "
        "photographs (LR made on the fly with the project's bicubic), or check that a NIMA "
        "scorer ranks each reference above its x2 and x4 bicubic copies. Writes results.md and "
        "results.json (date, machine, protocol).",
        formatter_class=_Formatter,
    )
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
    evaluate.set_defaults(handler=_entry("nie_cli.evaluate", "run_eval"))

    # nie zoo list|export
    zoo = sub.add_parser("zoo", help="the shipped model zoo", formatter_class=_Formatter)
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True, metavar="ACTION")
    zoo_list = zoo_sub.add_parser("list", help="list the zoo's models and their cards")
    zoo_list.set_defaults(handler=_entry("nie_cli.zoo", "run_list"))
    export = zoo_sub.add_parser(
        "export",
        help="write a trained checkpoint into the zoo (float16) with its model card",
        formatter_class=_Formatter,
    )
    export.add_argument("checkpoint", help="checkpoint file or run folder (e.g. runs/NAME/best)")
    export.add_argument(
        "--uri", required=True, help="zoo entry, e.g. zoo:edsr_baseline-x2@nie-photos"
    )
    export.add_argument("--recipe", required=True, help="recipe file it was trained with")
    export.add_argument("--eval", default=None, metavar="JSON", help="nie eval results.json")
    export.add_argument("--command", default=None, help="the retraining command, for the card")
    export.add_argument("--note", default=None, help="a remark added to the card, e.g. on timing")
    export.set_defaults(handler=_entry("nie_cli.zoo", "run_export"))

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
