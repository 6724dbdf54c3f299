from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from nie_core.models import MDSR, create_model

TINY = {"n_resblocks": 1, "n_feats": 8}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_mdsr_parameter_count() -> None:
    with torch.device("meta"):
        model = create_model("mdsr")
    count = n_params(model)
    assert count == 7_953_987
    assert abs(count - 7.95e6) / 7.95e6 < 0.01  # published: 7.95M (Lim et al. 2017, Table 2)


def test_mdsr_baseline_parameter_count() -> None:
    with torch.device("meta"):
        model = create_model("mdsr_baseline")
    assert n_params(model) == 3_227_203
    assert model.scales == (2, 3, 4)


@pytest.mark.parametrize("name", ["mdsr", "mdsr_baseline"])
def test_output_shape_at_every_scale(name: str) -> None:
    model = create_model(name).eval()
    x = torch.rand(1, 3, 7, 5)
    with torch.no_grad():
        for scale in (2, 3, 4):
            out = model(x, scale)
            assert out.shape == (1, 3, 7 * scale, 5 * scale)
            assert torch.isfinite(out).all()


def test_scales_give_different_branches() -> None:
    torch.manual_seed(0)
    model = create_model("mdsr", scales=(2, 4), **TINY).eval()
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        x2_then_down = torch.nn.functional.avg_pool2d(model(x, 2), 2)
        x4_then_down = torch.nn.functional.avg_pool2d(model(x, 4), 4)
    assert not torch.allclose(x2_then_down, x4_then_down)


def test_missing_scale_is_named() -> None:
    model = create_model("mdsr", scales=(2, 4), **TINY)
    with pytest.raises(ValueError, match=r"scales \(2, 4\), got 3"):
        model(torch.rand(1, 3, 4, 4), 3)


@pytest.mark.parametrize(("scales", "bad"), [((2, 5), "[5]"), ((1,), "[1]"), ((2, 2), "(2, 2)")])
def test_invalid_scales_are_named(scales, bad) -> None:
    with pytest.raises(ValueError, match=re.escape(f"got {bad}")):
        create_model("mdsr_baseline", scales=scales)


def test_unknown_override_is_named() -> None:
    with pytest.raises(ValueError, match="res_scale"):
        create_model("mdsr", res_scale=0.1)


def test_one_scale_leaves_other_branches_without_gradient() -> None:
    torch.manual_seed(0)
    model = create_model("mdsr", **TINY)
    model(torch.rand(2, 3, 6, 5), 3).square().mean().backward()
    for name, p in model.named_parameters():
        other_branch = name.startswith(("pre_process.0.", "pre_process.2.", "upsample.0."))
        other_branch |= name.startswith("upsample.2.")
        assert (p.grad is None) == other_branch, name


def test_receptive_radius_of_presets() -> None:
    with torch.device("meta"):
        # head 1 + pre-process 4 * 2 + body (2B + 1) + upsampler 1 + tail ceil(<= 1/2)
        assert create_model("mdsr").receptive_radius == 172
        assert create_model("mdsr_baseline").receptive_radius == 44


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_receptive_radius_is_exact(scale: int) -> None:
    """A pixel receptive_radius away from an output tile changes it; one pixel further does not."""
    torch.manual_seed(scale)
    model: MDSR = create_model("mdsr_baseline", n_resblocks=0, n_feats=8).double().eval()
    r = model.receptive_radius
    size, lo, hi = 44, 16, 20
    x = torch.rand(1, 3, size, size, dtype=torch.float64)

    def region_change(row: int, col: int) -> float:
        changed = x.clone()
        changed[0, :, row, col] += 5.0
        with torch.no_grad():
            diff = model(x, scale) - model(changed, scale)
        return diff[..., lo * scale : hi * scale, lo * scale : hi * scale].abs().max().item()

    assert region_change(18, hi - 1 + r) > 1e-9
    assert region_change(18, hi + r) < 1e-12
    assert region_change(lo - r, lo - r) > 1e-9
    assert region_change(lo - r - 1, lo - r - 1) < 1e-12


def test_own_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("mdsr_baseline", scales=(3, 2), **TINY).eval()
    torch.save({"model": model.state_dict()}, tmp_path / "checkpoint.pt")
    loaded = create_model(
        "mdsr_baseline", scales=(3, 2), weights=tmp_path / "checkpoint.pt", **TINY
    ).eval()
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        for scale in (2, 3):
            torch.testing.assert_close(loaded(x, scale), model(x, scale), rtol=0, atol=0)


def test_own_weights_with_other_scales_name_the_bad_keys(tmp_path: Path) -> None:
    torch.save(create_model("mdsr", scales=(2, 3), **TINY).state_dict(), tmp_path / "two.pt")
    with pytest.raises(ValueError, match=r"unexpected keys \['pre_process\.1\."):
        create_model("mdsr", scales=(2,), weights=tmp_path / "two.pt", **TINY)
