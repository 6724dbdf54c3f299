"""The model zoo table: each zoo model's file size and training from its card in
``nie_core/model_zoo/``, and its results from the committed ``nie eval`` output."""

from __future__ import annotations

import re

from .sources import Context, SourceError, read_card, read_eval_table, read_ranking, row
from .wording import column_of

ZOO_EDSR_CARD = "nie_core/model_zoo/edsr_baseline_x2_nie-photos.md"
ZOO_NIMA_CARD = "nie_core/model_zoo/nima_efficientnet_lite0_nie-quality.md"
ZOO_EDSR_VALID = "docs/results/zoo_edsr_valid_photos.md"
ZOO_EDSR_UNSEEN = "docs/results/zoo_edsr_unseen_skimage.md"
ZOO_NIMA_VALID = "docs/results/zoo_nima_ranking_valid_photos.md"
ZOO_NIMA_UNSEEN = "docs/results/zoo_nima_ranking_unseen_skimage.md"
ZOO_SOURCES = (
    ZOO_EDSR_CARD,
    ZOO_NIMA_CARD,
    ZOO_EDSR_VALID,
    ZOO_EDSR_UNSEEN,
    ZOO_NIMA_VALID,
    ZOO_NIMA_UNSEEN,
)


def _psnr_cell(ctx: Context, path: str, label: str) -> tuple[str, str]:
    table = read_eval_table(ctx.root, path)
    model = row(table, path, lambda n: n.startswith("model"), "model")
    column = column_of(table, "PSNR-Y")
    m, b = table.rows[model][column], table.rows["bicubic"][column]
    if m is None or b is None:
        raise SourceError(f"{path}: no PSNR-Y of the model and bicubic")
    cell = (
        f"PSNR-Y {m.fmt(m.mean)} ± {m.fmt(m.sd)} dB vs bicubic {b.fmt(b.mean)} ± {b.fmt(b.sd)} "
        f"({m.fmt(m.mean - b.mean, sign=True)} dB) on {table.images} {label} "
        f"({ctx.link(path, 'table')})"
    )
    return cell, f"{ctx.link(path)}: {table.title}"


def _ranking_cell(ctx: Context, path: str, label: str) -> str:
    r = read_ranking(ctx.root, path)
    return (
        f"{r['right']}/{r['pairs']} pairs ({r['percent']} %) on {r['images']} {label} "
        f"({ctx.link(path, 'result')})"
    )


def _card_cells(ctx: Context, path: str) -> tuple[str, str]:
    card = read_card(ctx.root, path)
    for key in ("File", "Steps", "Wall time"):
        if key not in card:
            raise SourceError(f"{path}: no '{key}' line")
    size = re.search(r"\((.+?)\)", card["File"])
    steps = re.fullmatch(r"(\d+) \((.+)\)", card["Steps"])
    if not size or not steps:
        raise SourceError(f"{path}: unexpected File or Steps line")
    trained = f"{int(steps.group(1)):,} steps ({steps.group(2)}), {card['Wall time']}"
    if "wall time" in card.get("Note", ""):
        trained += " (of part of the run: see the card's note)"
    return size.group(1), trained


def render_zoo_table(ctx: Context) -> str:
    """The model zoo table: sizes and steps from the cards, results from ``nie eval``."""
    edsr_size, edsr_trained = _card_cells(ctx, ZOO_EDSR_CARD)
    nima_size, nima_trained = _card_cells(ctx, ZOO_NIMA_CARD)
    valid, valid_line = _psnr_cell(ctx, ZOO_EDSR_VALID, "validation photographs")
    unseen, unseen_line = _psnr_cell(
        ctx, ZOO_EDSR_UNSEEN, "other scikit-image images never trained on"
    )
    nima_valid = _ranking_cell(ctx, ZOO_NIMA_VALID, "validation photographs")
    nima_unseen = _ranking_cell(ctx, ZOO_NIMA_UNSEEN, "other scikit-image images")
    nima_eval = read_card(ctx.root, ZOO_NIMA_CARD).get("eval", "no date")
    edsr = "`zoo:edsr_baseline-x2@nie-photos`"
    nima = "`zoo:nima@nie-quality`"
    rows = [
        "| model | file | trained on | result (from the committed `nie eval` output) |",
        "|---|---|---|---|",
        f"| {edsr} ({ctx.link(ZOO_EDSR_CARD, 'card')}) | {edsr_size} | the 15 training "
        f"photographs of `nie data photos`, L2 loss; {edsr_trained} | {valid}; {unseen} |",
        f"| {nima} ({ctx.link(ZOO_NIMA_CARD, 'card')}) | {nima_size} | synthetic ratings of "
        f"crops of the 15 training photographs, clean and degraded (`nie data ratings`); "
        f"{nima_trained} | ranks reference > x2 bicubic > x4 bicubic in {nima_valid} and in "
        f"{nima_unseen} |",
    ]
    return "\n".join(rows) + (
        f"\n\nDates and machines, from the first line of each table: {valid_line}; "
        f"{unseen_line}. The two ranking files record none; the card of {nima} dates its "
        f"ranking on the validation photographs ({nima_eval})."
    )
