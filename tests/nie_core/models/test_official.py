"""Importing EDSR-PyTorch checkpoints: a reference network in the official module layout, with
rgb_range=255 semantics, is built here, saved, loaded through create_model, and compared."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nie_core.models import convert_official_state_dict, create_model

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)
RGB_RANGE = 255.0


# --- reference: the official EDSR-PyTorch module tree, pixel values in [0, 255] ---------------


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class RefMeanShift(nn.Conv2d):
    """1x1 conv with identity weight and bias sign * 255 * mean (official MeanShift, std 1)."""

    def __init__(self, mean: tuple[float, ...], sign: int) -> None:
        super().__init__(3, 3, 1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * RGB_RANGE * torch.tensor(mean)
        self.requires_grad_(False)


class RefResBlock(nn.Module):
    def __init__(self, feats: int, k: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(feats, feats, k), nn.ReLU(), _conv(feats, feats, k))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.res_scale + x


def ref_upsampler(scale: int, feats: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    if scale == 3:
        layers += [_conv(feats, 9 * feats, 3), nn.PixelShuffle(3)]
    else:  # powers of two, including 1 (no stage)
        for _ in range(int(math.log2(scale))):
            layers += [_conv(feats, 4 * feats, 3), nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


class RefEDSR(nn.Module):
    def __init__(self, scale, n_resblocks, n_feats, res_scale, mean=DIV2K_MEAN) -> None:
        super().__init__()
        self.sub_mean = RefMeanShift(mean, -1)
        self.add_mean = RefMeanShift(mean, 1)
        self.head = nn.Sequential(_conv(3, n_feats, 3))
        blocks = [RefResBlock(n_feats, 3, res_scale) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, _conv(n_feats, n_feats, 3))
        self.tail = nn.Sequential(ref_upsampler(scale, n_feats), _conv(n_feats, 3, 3))

    def forward(self, x255: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x255))
        return self.add_mean(self.tail(self.body(x) + x))


class RefMDSR(nn.Module):
    def __init__(self, n_resblocks, n_feats, scales=(2, 3, 4), mean=DIV2K_MEAN) -> None:
        super().__init__()
        self.scale_idx = 0
        self.sub_mean = RefMeanShift(mean, -1)
        self.head = nn.Sequential(_conv(3, n_feats, 3))
        self.pre_process = nn.ModuleList(
            nn.Sequential(RefResBlock(n_feats, 5), RefResBlock(n_feats, 5)) for _ in scales
        )
        blocks = [RefResBlock(n_feats, 3) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, _conv(n_feats, n_feats, 3))
        self.upsample = nn.ModuleList(ref_upsampler(s, n_feats) for s in scales)
        self.tail = nn.Sequential(_conv(n_feats, 3, 3))
        self.add_mean = RefMeanShift(mean, 1)

    def forward(self, x255: torch.Tensor) -> torch.Tensor:
        x = self.pre_process[self.scale_idx](self.head(self.sub_mean(x255)))
        x = self.upsample[self.scale_idx](self.body(x) + x)
        return self.add_mean(self.tail(x))


def randomise_biases(model: nn.Module, seed: int) -> None:
    """Default init leaves biases small; in [0, 255] units they must be large to matter."""
    gen = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and "mean" not in name:
            module.bias.data = torch.randn(module.bias.shape, generator=gen) * 20.0


def save(model: nn.Module, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path


def lr_image(h: int = 9, w: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(seed))


def assert_matches_reference(ours: nn.Module, ref: nn.Module, *scale_arg: int) -> None:
    x = lr_image()
    with torch.no_grad():
        expected = ref(x * RGB_RANGE) / RGB_RANGE
        got = ours(x, *scale_arg)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)


# --- EDSR ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_edsr_reproduces_official_network(tmp_path: Path, scale: int) -> None:
    torch.manual_seed(scale)
    ref = RefEDSR(scale, n_resblocks=2, n_feats=8, res_scale=0.1).eval()
    randomise_biases(ref, seed=scale)
    path = save(ref, tmp_path / "official.pt")

    ours = create_model(
        "edsr", scale=scale, weights=str(path), n_resblocks=2, n_feats=8, res_scale=0.1
    ).eval()

    assert_matches_reference(ours, ref)


def test_official_mean_shift_values_are_used(tmp_path: Path) -> None:
    mean = (0.2, 0.5, 0.7)
    torch.manual_seed(0)
    ref = RefEDSR(2, n_resblocks=1, n_feats=8, res_scale=1.0, mean=mean).eval()
    path = save(ref, tmp_path / "official.pt")
    ours = create_model("edsr_baseline", scale=2, weights=path, n_resblocks=1, n_feats=8)
    assert_matches_reference(ours.eval(), ref)


def test_official_file_without_mean_shift_uses_div2k_mean(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ref = RefEDSR(2, n_resblocks=1, n_feats=8, res_scale=1.0).eval()
    randomise_biases(ref, seed=1)
    state = {k: v for k, v in ref.state_dict().items() if "mean" not in k}
    torch.save(state, tmp_path / "official.pt")
    ours = create_model("edsr_baseline", weights=tmp_path / "official.pt", n_resblocks=1, n_feats=8)
    assert_matches_reference(ours.eval(), ref)


def test_real_size_edsr_baseline_checkpoint_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ref = RefEDSR(2, n_resblocks=16, n_feats=64, res_scale=1.0).eval()
    randomise_biases(ref, seed=0)
    path = save(ref, tmp_path / "edsr_baseline_x2-1bc95232.pt")
    ours = create_model("edsr_baseline", scale=2, weights=str(path)).eval()
    assert_matches_reference(ours, ref)


def _official_mean_entries() -> dict[str, torch.Tensor]:
    return {
        f"{name}.{kind}": tensor
        for name, sign in (("sub_mean", -1), ("add_mean", 1))
        for kind, tensor in RefMeanShift(DIV2K_MEAN, sign).state_dict().items()
    }


PUBLISHED_CONFIGS = [
    pytest.param(
        preset, {"scale": s}, lambda s=s, b=b, f=f, r=r: RefEDSR(s, b, f, r), id=f"{preset}_x{s}"
    )
    for preset, b, f, r in (("edsr_baseline", 16, 64, 1.0), ("edsr", 32, 256, 0.1))
    for s in (2, 3, 4)
] + [
    pytest.param("mdsr_baseline", {}, lambda: RefMDSR(16, 64), id="mdsr_baseline"),
    pytest.param("mdsr", {}, lambda: RefMDSR(80, 64), id="mdsr"),
]


@pytest.mark.parametrize(("name", "kwargs", "ref_factory"), PUBLISHED_CONFIGS)
def test_published_layouts_match_key_for_key(name, kwargs, ref_factory) -> None:
    """Every published configuration converts to exactly our keys and shapes (meta tensors)."""
    with torch.device("meta"):
        ref_state = ref_factory().state_dict()
        ours = create_model(name, **kwargs)
    ref_state.update(_official_mean_entries())  # meta tensors cannot be inspected; use real ones

    converted = convert_official_state_dict(ref_state)

    expected = ours.state_dict()
    assert sorted(converted) == sorted(expected)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {
        k: tuple(v.shape) for k, v in expected.items()
    }


def test_missing_key_is_named(tmp_path: Path) -> None:
    state = RefEDSR(2, 1, 8, 1.0).state_dict()
    del state["tail.1.weight"]
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match=r"missing keys \['tail\.1\.weight'\]"):
        create_model("edsr_baseline", weights=tmp_path / "broken.pt", n_resblocks=1, n_feats=8)


def test_wrong_scale_checkpoint_names_mismatched_shape(tmp_path: Path) -> None:
    path = save(RefEDSR(2, 1, 8, 1.0), tmp_path / "x2.pt")
    with pytest.raises(ValueError, match=r"tail\.0\.0\.weight"):
        create_model("edsr_baseline", scale=3, weights=path, n_resblocks=1, n_feats=8)


def test_non_identity_mean_shift_weight_is_rejected(tmp_path: Path) -> None:
    ref = RefEDSR(2, 1, 8, 1.0)
    ref.sub_mean.weight.data *= 2.0  # an rgb_std of 0.5
    path = save(ref, tmp_path / "std.pt")
    with pytest.raises(ValueError, match="sub_mean.weight"):
        create_model("edsr_baseline", weights=path, n_resblocks=1, n_feats=8)


# --- MDSR ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official_mdsr(tmp_path_factory: pytest.TempPathFactory) -> tuple[RefMDSR, Path]:
    torch.manual_seed(7)
    ref = RefMDSR(n_resblocks=2, n_feats=8).eval()
    randomise_biases(ref, seed=7)
    return ref, save(ref, tmp_path_factory.mktemp("mdsr") / "mdsr-official.pt")


def test_mdsr_reproduces_official_network_at_every_scale(official_mdsr) -> None:
    ref, path = official_mdsr
    ours = create_model("mdsr", weights=str(path), n_resblocks=2, n_feats=8).eval()
    for index, scale in enumerate((2, 3, 4)):
        ref.scale_idx = index
        assert_matches_reference(ours, ref, scale)


def test_mdsr_with_fewer_scales_takes_the_matching_branches(official_mdsr) -> None:
    ref, path = official_mdsr
    ours = create_model("mdsr_baseline", scales=(4, 2), weights=path, n_resblocks=2, n_feats=8)
    ours.eval()
    for index, scale in ((2, 4), (0, 2)):
        ref.scale_idx = index
        assert_matches_reference(ours, ref, scale)


def test_mdsr_checkpoint_with_unexpected_branch_count_is_rejected(tmp_path: Path) -> None:
    path = save(RefMDSR(1, 8, scales=(2, 3, 4, 2)), tmp_path / "four_branches.pt")
    with pytest.raises(ValueError, match="pre_process.3"):
        create_model("mdsr", weights=path, n_resblocks=1, n_feats=8)
