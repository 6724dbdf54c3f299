"""The hybrid loss's ablation: each remedy against scorer gaming, measured on unseen photographs.

    python -m tools.hybrid_ablation [--out docs/results/hybrid_ablation.md] [--steps 40]
        [--seeds 0 1] [--only NAME ...]

Every row fine-tunes the zoo's EDSR-baseline x2 from the same checkpoint with the demo's hybrid
recipe (``ray_jobs/recipes/demo_edsr_hybrid.yaml``, every remedy on) plus the row's overrides,
which switch remedies off or change the scorer: the same data, steps, batch (8 patches, as the
demo's 2 workers x 4) and seeds. The rows with the demo's hardened scorer run when
``runs/demo-nima-hardened/best`` exists (after ``nie demo``). Training runs in this process
(``ray_jobs.quick_finetune``: no Ray, the job's own dataset, loss, warm-up and
``nie_core.training.train_step``), in float32. Each model is
then measured with ``nie_core.evaluation`` (the ``nie eval`` protocol) on the unseen crops of
the held-out photographs (``nie_core.data.photos.unseen``: centre, smoothest and most detailed
384 px windows at 2040 px), with the frozen zoo NIMA as the scorer the hybrid rows optimise.

Writes the Markdown table (means over images, then over seeds; and each row minus the L2 row)
and a JSON file with every value, both stamped with date and machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from nie_core.config import load_config
from nie_core.evaluation import METRIC_TITLES, PROTOCOL, evaluate_images, list_images
from nie_core.machine import describe_machine
from nie_core.models.nima import freeze_scorer
from nie_core.models.zoo import load_zoo_uri
from ray_jobs.config import RECIPES, EnhancerJobConfig
from ray_jobs.quick_finetune import quick_finetune

RECIPE = RECIPES / "demo_edsr_hybrid.yaml"
UNSEEN = Path("data/photos/unseen_crops_384")
ZOO = "zoo:edsr_baseline-x2@nie-photos"
SCORER = "zoo:nima@nie-quality"
HARDENED = "runs/demo-nima-hardened/best"  # the demo's hardened scorer (stage "scorer")
_NO_EOT = ("loss.guard.views=1", "loss.guard.view_crop=1.0", "loss.guard.flip=false",
           "loss.guard.subpixel=false")  # fmt: skip
_NO_LOWPASS = ("loss.guard.lowpass_factor=0",)
_NO_SMOOTH = ("loss.guard.smooth_weight=0",)
_PLAIN = (*_NO_EOT, *_NO_LOWPASS, *_NO_SMOOTH)
_HARDENED = (f"loss.nima_checkpoint={HARDENED}",)

# name -> (what it tests, overrides on the demo hybrid recipe, which has every remedy on);
# "zoo" is the start, untrained. Rows naming the hardened scorer need the demo's runs/.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "zoo": ("the zoo checkpoint every row starts from", ()),
    "l2": ("L2 only (gamma 0): the demo's L2 model", ("loss.gamma=0",)),
    "probe": ("the report's plain loss, gamma 8 at lr 5e-5: the demo's gaming probe",
              (*_PLAIN, "loss.gamma=8", "optim.lr=5e-5")),
    "plain": ("the report's plain loss at the recipe's gamma 16 and lr 2e-5", _PLAIN),
    "+eot": ("+ random crops, flips and sub-pixel shifts for the scorer",
             (*_NO_LOWPASS, *_NO_SMOOTH)),
    "+eot+lowpass": ("+ the scorer's gradient kept out of what the x2 input fixes", _NO_SMOOTH),
    "+eot+lowpass+smooth": ("+ high-pass error on the reference's smooth areas (the recipe, "
                            "zoo scorer)", ()),
    "plain+hardened": ("the plain loss against the demo's hardened scorer",
                        (*_PLAIN, *_HARDENED)),
    "recipe+hardened": ("every remedy against the hardened scorer: the demo's hybrid model",
                         _HARDENED),
}  # fmt: skip


def _mean(values: list[float]) -> float:
    return statistics.fmean(values)


def run(names: list[str], steps: int, seeds: list[int], log=print) -> dict:
    """Train and measure every variant in ``names``; returns the JSON payload."""
    images = list_images(UNSEEN)
    scorer = freeze_scorer(load_zoo_uri(SCORER))
    per_seed: dict[str, list[dict]] = {}
    for name in names:
        _, overrides = VARIANTS[name]
        for seed in seeds if name != "zoo" else seeds[:1]:
            started = time.monotonic()
            if name == "zoo":
                model = load_zoo_uri(ZOO).eval()
            else:
                cfg = load_config(EnhancerJobConfig, RECIPE, list(overrides))
                model = quick_finetune(cfg, steps, batch=8, seed=seed)
            table = evaluate_images(images, {name: model}, 2, scorer=scorer)
            per_seed.setdefault(name, []).append(table.values[name])
            per_seed.setdefault("bicubic", [table.values["bicubic"]])
            log(f"{name} seed {seed}: {time.monotonic() - started:.0f} s, PSNR-Y "
                f"{_mean(table.values[name]['psnr_y']):.3f}, NIMA {_mean(table.values[name]['nima']):.3f}")  # fmt: skip
    return {"images": [p.name for p in images], "steps": steps, "seeds": seeds,
            "variants": {n: list(VARIANTS[n]) for n in names}, "values": per_seed}  # fmt: skip


def markdown(payload: dict, date: str, machine: str) -> str:
    """The ablation table: per variant, the mean over images (then seeds) of every metric, and
    the difference to the L2 row."""
    values = payload["values"]
    metrics = [m for m in METRIC_TITLES if m in values["bicubic"][0]]
    means = {
        row: {m: _mean([_mean(v[m]) for v in runs]) for m in metrics}
        for row, runs in values.items()
    }
    head = "| variant | what | " + " | ".join(METRIC_TITLES[m] for m in metrics) + " |"
    lines = [
        f"**Hybrid-loss ablation ({date}, {machine})**",
        "",
        head,
        "|---|---|" + "---:|" * len(metrics),
    ]
    for row in ["bicubic", *payload["variants"]]:
        what = payload["variants"].get(row, ["bicubic upsampling of the input"])[0]
        cells = " | ".join(f"{means[row][m]:.4f}" for m in metrics)
        lines.append(f"| {row} | {what} | {cells} |")
    if "l2" in means:
        lines += ["", "Minus the L2 row:", "", "| variant | " + " | ".join(
            METRIC_TITLES[m] for m in metrics) + " |", "|---|" + "---:|" * len(metrics)]  # fmt: skip
        for row in payload["variants"]:
            if row not in ("l2",):
                cells = " | ".join(f"{means[row][m] - means['l2'][m]:+.4f}" for m in metrics)
                lines.append(f"| {row} | {cells} |")
    n_images = len(payload["images"])
    lines += [
        "",
        f"{n_images} unseen crops ({', '.join(payload['images'])}); {payload['steps']} steps of 8 "
        f"patches from the zoo checkpoint, seeds {payload['seeds']}, float32; recipe "
        f"{RECIPE.name} plus each row's overrides (`python -m tools.hybrid_ablation`). "
        f"Protocol: {PROTOCOL}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.hybrid_ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", default="docs/results/hybrid_ablation.md")
    parser.add_argument("--steps", type=int, default=40, help="fine-tuning steps per row")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="rows to run")
    args = parser.parse_args(argv)
    if not UNSEEN.is_dir():
        from nie_core.data.photos.unseen import write_unseen_crops

        write_unseen_crops("data/photos", UNSEEN)
    names = args.only or [
        n for n in VARIANTS if Path(HARDENED).exists() or HARDENED not in " ".join(VARIANTS[n][1])
    ]
    payload = run(names, args.steps, args.seeds)
    date = datetime.now(UTC).isoformat(timespec="seconds")
    machine = describe_machine()
    payload.update(date=date, machine=machine)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(payload, date, machine), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    print(out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
