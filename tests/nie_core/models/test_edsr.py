from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nie_core.models import EDSR, create_model

TINY = {"n_resblocks": 2, "n_feats": 8}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "scale", "exact", "published_millions", "digits"),
    [
        ("edsr_baseline", 2, 1_369_859, 1.37, 2),
        ("edsr_baseline", 3, 1_554_499, 1.55, 2),
        ("edsr_baseline", 4, 1_517_571, 1.52, 2),
        ("edsr", 2, 40_729_603, 40.7, 1),
        ("edsr", 3, 43_680_003, 43.7, 1),
        ("edsr", 4, 43_089_923, 43.1, 1),
    ],
)
def test_parameter_counts_match_the_paper(name, scale, exact, published_millions, digits) -> None:
    with torch.device("meta"):  # shapes only: no memory, no init
        model = create_model(name, scale=scale)
    count = n_params(model)
    assert count == exact
    assert round(count / 1e6, digits) == published_millions


def test_mean_shift_is_not_trainable() -> None:
    model = create_model("edsr_baseline", scale=2, **TINY)
    assert all("mean" not in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("name", ["edsr_baseline", "edsr"])
def test_output_shape_full_size(name: str, scale: int) -> None:
    model = create_model(name, scale=scale).eval()
    assert model.scale == scale
    with torch.no_grad():
        out = model(torch.rand(1, 3, 8, 6))
    assert out.shape == (1, 3, 8 * scale, 6 * scale)
    assert torch.isfinite(out).all()


def test_zero_network_outputs_the_div2k_mean() -> None:
    """With every conv zeroed only the mean shift is left: the output is the DIV2K mean."""
    model = create_model("edsr_baseline", scale=2, **TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        out = model(torch.rand(2, 3, 5, 4))
    expected = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand(2, 3, 10, 8)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("bad_scale", [0, 5, 8, 2.5])
def test_unsupported_scale_is_named(bad_scale) -> None:
    with pytest.raises(ValueError, match=f"got {bad_scale}"):
        create_model("edsr_baseline", scale=bad_scale)


def test_unknown_override_is_named() -> None:
    with pytest.raises(ValueError, match="n_blocks"):
        create_model("edsr", scale=2, n_blocks=4)


def test_overrides_change_the_architecture() -> None:
    model = create_model("edsr", scale=2, n_resblocks=3, n_feats=16, res_scale=0.5)
    assert isinstance(model, EDSR)
    # head + 3 blocks * 2 convs + body conv + upsampler conv + tail conv
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 10
    assert model.head[0].out_channels == 16


@pytest.mark.parametrize(
    ("name", "scale", "radius"),
    [("edsr_baseline", 1, 35), ("edsr_baseline", 2, 36), ("edsr_baseline", 4, 36), ("edsr", 3, 68)],
)
def test_receptive_radius_of_presets(name: str, scale: int, radius: int) -> None:
    with torch.device("meta"):
        assert create_model(name, scale=scale).receptive_radius == radius


def _region_change(model: EDSR, pixel: tuple[int, int], size: int = 40, lo: int = 8, hi: int = 16):
    """Largest change of the output over LR tile [lo, hi)^2 when one input pixel is perturbed."""
    s = model.scale
    x = torch.rand(
        1, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    x_changed = x.clone()
    x_changed[0, :, pixel[0], pixel[1]] += 5.0
    with torch.no_grad():
        region = (slice(None), slice(None), slice(lo * s, hi * s), slice(lo * s, hi * s))
        return (model(x)[region] - model(x_changed)[region]).abs().max().item()


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_receptive_radius_is_exact(scale: int) -> None:
    """A pixel receptive_radius away from an output tile changes it; one pixel further does not."""
    torch.manual_seed(scale)
    model = create_model("edsr_baseline", scale=scale, n_resblocks=1, n_feats=8).double().eval()
    r = model.receptive_radius
    lo, hi = 8, 16  # LR tile, rows and columns
    for inside, outside in [
        ((12, hi - 1 + r), (12, hi - 1 + r + 1)),  # right of the tile
        ((lo - r, 12), (lo - r - 1, 12)),  # above the tile
        ((hi - 1 + r, lo - r), (hi + r, lo - r - 1)),  # diagonal corner
    ]:
        assert _region_change(model, inside, lo=lo, hi=hi) > 1e-9, inside
        assert _region_change(model, outside, lo=lo, hi=hi) < 1e-12, outside


def test_weights_with_other_depth_name_the_bad_keys(tmp_path: Path) -> None:
    torch.save(create_model("edsr", scale=2, **TINY).state_dict(), tmp_path / "deep.pt")
    with pytest.raises(ValueError, match=r"missing keys \['body\.1\.bias', 'body\.1\.weight'\]"):
        create_model("edsr", scale=2, weights=tmp_path / "deep.pt", n_resblocks=1, n_feats=8)


def test_weights_of_wrong_type_are_rejected() -> None:
    with pytest.raises(ValueError, match="weights must be None or a file path"):
        create_model("edsr_baseline", weights=42)
