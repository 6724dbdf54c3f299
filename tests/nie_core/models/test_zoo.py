"""The shipped model zoo: every entry loads by name and by URI, and does what its card says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nie_core.checkpoint import load_model
from nie_core.data.degradations import bicubic_downsample
from nie_core.data.images import to_tensor
from nie_core.metrics import mean_score, psnr_y
from nie_core.models import create_model
from nie_core.models import zoo as zoo_module
from nie_core.models.zoo import (
    ZOO,
    ZooEntry,
    export_zoo_file,
    find_zoo_entry,
    load_zoo_uri,
    parse_zoo_uri,
)

MAX_FILE_BYTES = 6 * 1024 * 1024
MAX_ZOO_BYTES = 25 * 1024 * 1024


def _chelsea_crop(size: int = 192) -> np.ndarray:
    """A centre crop of scikit-image's cat photo: a validation photograph of the photo set, so
    the zoo models never trained on it."""
    from skimage import data

    image = data.chelsea()
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


@pytest.mark.parametrize("entry", ZOO, ids=lambda e: e.uri)
def test_every_entry_is_shipped_small_with_a_card(entry: ZooEntry) -> None:
    assert entry.path.is_file(), entry.path
    assert entry.path.stat().st_size <= MAX_FILE_BYTES
    card = entry.card.read_text()
    for needed in ("Recipe", "Steps", "Wall time", "Machine", "Retrain"):
        assert needed in card, needed
    model = load_zoo_uri(entry.uri)
    assert not model.training
    assert parse_zoo_uri(entry.uri) == entry


def test_the_zoo_fits_the_size_budget() -> None:
    assert sum(entry.path.stat().st_size for entry in ZOO) <= MAX_ZOO_BYTES


def test_zoo_edsr_beats_bicubic_on_an_unseen_photograph() -> None:
    model = create_model("edsr_baseline", scale=2, weights="nie-photos").eval()
    hr_array = _chelsea_crop()
    hr = to_tensor(hr_array)[None]
    lr = to_tensor(bicubic_downsample(hr_array, 2))[None]
    with torch.no_grad():
        sr = model(lr).clamp(0, 1)
    bicubic = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    gain = (psnr_y(sr, hr, shave=2) - psnr_y(bicubic, hr, shave=2)).item()
    assert gain > 0.5, gain


def test_zoo_nima_prefers_the_sharp_photograph() -> None:
    from nie_core.data.quality_ratings import QualityLevel, degrade
    from nie_core.inference import score

    scorer = create_model(
        "nima", backbone="efficientnet_lite0", input_size=None, weights="nie-quality"
    )
    assert scorer.input_size is None  # scores unresized pixels
    hr = _chelsea_crop()
    rng = np.random.default_rng(0)
    scores = [
        mean_score(score(scorer, to_tensor(image)[None])).item()
        for image in (
            hr,
            degrade(hr, QualityLevel("b2", "bicubic", 2, 0.0), rng),
            degrade(hr, QualityLevel("b4", "bicubic", 4, 0.0), rng),
        )
    ]
    assert scores[0] > scores[1] > scores[2], scores


def test_wrong_arguments_or_tags_are_errors_that_list_the_zoo() -> None:
    with pytest.raises(ValueError, match="the zoo has"):
        create_model("edsr_baseline", scale=3, weights="nie-photos")
    with pytest.raises(ValueError, match="the zoo has"):
        find_zoo_entry("edsr", "nie-photos")
    with pytest.raises(ValueError, match="not a zoo URI"):
        parse_zoo_uri("edsr_baseline-x2")
    with pytest.raises(ValueError, match="no zoo model"):
        parse_zoo_uri("zoo:edsr_baseline-x9@nie-photos")


def test_export_and_load_round_trip_full_and_partial(tmp_path: Path, monkeypatch) -> None:
    """A full file loads strictly; a partial one only replaces what it holds."""
    monkeypatch.setattr(zoo_module, "zoo_dir", lambda: tmp_path)
    tiny = {"scale": 2, "n_resblocks": 1, "n_feats": 8}
    entries = (
        ZooEntry("edsr_baseline", "t-full", tiny, "full.pt"),
        ZooEntry("edsr_baseline", "t-part", tiny, "part.pt", base_weights=None),
    )
    monkeypatch.setattr(zoo_module, "ZOO", entries)
    torch.manual_seed(0)
    trained = create_model("edsr_baseline", **tiny)
    export_zoo_file(trained, "edsr_baseline", tiny, tmp_path / "full.pt")
    loaded = create_model("edsr_baseline", **tiny, weights="t-full")
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, atol=1e-3, rtol=1e-3)
    # The zoo file is also an ordinary checkpoint.
    assert load_model(tmp_path / "full.pt").scale == 2

    base = create_model("edsr_baseline", **tiny)
    changed = create_model("edsr_baseline", **tiny)
    changed.load_state_dict(base.state_dict())
    with torch.no_grad():
        changed.tail[-1].weight.add_(1.0)
    path = export_zoo_file(changed, "edsr_baseline", tiny, tmp_path / "part.pt", base=base)
    held = torch.load(path, weights_only=True)["model"]
    assert set(held) == {"tail.1.weight"} and held["tail.1.weight"].dtype == torch.float16
