from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nie_core.inference import ScorerInput, enhance, fast_path_supported, prepare_model, score
from tests.stand_ins import NearestX2


class TinySR(nn.Module):
    """EDSR-shaped stand-in: convs on the input grid, a sub-pixel upsampler, a conv on the
    output grid. Its receptive radius is 1 (head) + n_body + 1 (upsampler conv) + 1/scale
    (output-grid conv), rounded up."""

    def __init__(self, scale: int = 2, width: int = 8, n_body: int = 2, bias: float = 0.0) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(n_body))
        self.upsample = nn.Sequential(
            nn.Conv2d(width, width * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )
        self.tail = nn.Conv2d(width, 3, 3, padding=1)
        self.register_buffer("bias", torch.tensor(bias))
        self.receptive_radius = math.ceil(1 + n_body + 1 + 1 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.head(x))
        for conv in self.body:
            features = torch.relu(conv(features))
        return self.tail(self.upsample(features)) + self.bias


class TinyMultiScaleSR(nn.Module):
    """MDSR-shaped stand-in: forward(x, scale) with one upsampler per scale."""

    def __init__(self, scales: tuple[int, ...] = (2, 3), width: int = 6) -> None:
        super().__init__()
        self.scales = scales
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.upsample = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, 3 * s * s, 3, padding=1), nn.PixelShuffle(s))
            for s in scales
        )
        self.receptive_radius = 2

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        return self.upsample[self.scales.index(scale)](torch.relu(self.head(x)))


class RecordingScorer(nn.Module):
    """NIMA-shaped stand-in: records its input, returns a softmax over 10 buckets; declares a
    224 x 224 input, as a paper NIMA."""

    scorer_input = ScorerInput(size=224)

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 10)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return torch.softmax(self.fc(x.mean(dim=(2, 3))), dim=1)


@pytest.fixture
def tiny_sr() -> TinySR:
    torch.manual_seed(0)
    return TinySR().eval()


def test_untiled_output_is_clamped_model_output(tiny_sr: TinySR) -> None:
    x = torch.rand(2, 3, 11, 7)
    with torch.no_grad():
        raw = tiny_sr(x)
    out = enhance(tiny_sr, x, fast=False)
    assert out.shape == (2, 3, 22, 14) and out.dtype == torch.float32
    assert raw.min() < 0 or raw.max() > 1  # the clamp below is exercised
    torch.testing.assert_close(out, raw.clamp(0, 1))


@pytest.mark.parametrize(
    ("n", "height", "width", "tile_size"),
    [
        (1, 24, 24, 8),  # divisible
        (2, 27, 19, 10),  # not divisible, batch of 2
        (1, 12, 35, 16),  # larger than a tile in one direction only
        (1, 7, 6, 1),  # one-pixel tiles
        (1, 12, 12, 64),  # tile larger than the image: no tiling
    ],
)
def test_tiled_output_equals_untiled(
    tiny_sr: TinySR, n: int, height: int, width: int, tile_size: int
) -> None:
    x = torch.rand(n, 3, height, width)
    whole = enhance(tiny_sr, x, fast=False)
    tiled = enhance(tiny_sr, x, tile_size=tile_size, fast=False)
    assert tiled.shape == (n, 3, 2 * height, 2 * width)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)


def test_overlap_below_receptive_radius_leaves_seams(tiny_sr: TinySR) -> None:
    x = torch.rand(1, 3, 24, 24)
    whole = enhance(tiny_sr, x, fast=False)
    seamed = enhance(tiny_sr, x, tile_size=8, tile_overlap=tiny_sr.receptive_radius - 2, fast=False)
    assert (seamed - whole).abs().max() > 1e-3


def test_tiling_works_at_scale_three() -> None:
    torch.manual_seed(1)
    model = TinySR(scale=3, n_body=1).eval()
    x = torch.rand(1, 3, 17, 13)
    whole = enhance(model, x, fast=False)
    assert whole.shape == (1, 3, 51, 39)
    torch.testing.assert_close(enhance(model, x, tile_size=5, fast=False), whole, rtol=0, atol=1e-5)


def test_multi_scale_model_needs_and_uses_scale() -> None:
    torch.manual_seed(0)
    model = TinyMultiScaleSR().eval()
    x = torch.rand(1, 3, 10, 14)
    with pytest.raises(ValueError, match=r"scales \(2, 3\); pass scale="):
        enhance(model, x, fast=False)
    with pytest.raises(ValueError, match="scale 4 is not among"):
        enhance(model, x, scale=4, fast=False)
    for scale in model.scales:
        out = enhance(model, x, scale=scale, fast=False)
        with torch.no_grad():
            expected = model(x, scale).clamp(0, 1)
        torch.testing.assert_close(out, expected)
        tiled = enhance(model, x, scale=scale, tile_size=4, fast=False)
        torch.testing.assert_close(tiled, expected, rtol=0, atol=1e-5)


def test_single_scale_model_rejects_other_scale(tiny_sr: TinySR) -> None:
    x = torch.rand(1, 3, 8, 8)
    assert enhance(tiny_sr, x, scale=2, fast=False).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="scale 3 requested from a model with fixed scale 2"):
        enhance(tiny_sr, x, scale=3, fast=False)


def test_self_ensemble_output_is_equivariant_to_rotation_and_flip(tiny_sr: TinySR) -> None:
    x = torch.rand(1, 3, 9, 12)
    ensembled = enhance(tiny_sr, x, self_ensemble=True, fast=False)
    rotated = enhance(tiny_sr, torch.rot90(x, 1, dims=(2, 3)), self_ensemble=True, fast=False)
    flipped = enhance(tiny_sr, x.flip(2), self_ensemble=True, fast=False)
    torch.testing.assert_close(rotated, torch.rot90(ensembled, 1, dims=(2, 3)), rtol=0, atol=1e-5)
    torch.testing.assert_close(flipped, ensembled.flip(2), rtol=0, atol=1e-5)
    # A plain forward of this model is not equivariant, so the property comes from the ensemble.
    plain = enhance(tiny_sr, x, fast=False)
    plain_rotated = enhance(tiny_sr, torch.rot90(x, 1, dims=(2, 3)), fast=False)
    assert (plain_rotated - torch.rot90(plain, 1, dims=(2, 3))).abs().max() > 1e-3


def test_self_ensemble_keeps_an_equivariant_model_unchanged() -> None:
    x = torch.rand(2, 3, 5, 7)
    out = enhance(NearestX2(), x, self_ensemble=True, fast=False)
    torch.testing.assert_close(out, F.interpolate(x, scale_factor=2, mode="nearest"))


def test_self_ensemble_with_tiles_equals_without(tiny_sr: TinySR) -> None:
    x = torch.rand(1, 3, 14, 9)
    whole = enhance(tiny_sr, x, self_ensemble=True, fast=False)
    tiled = enhance(tiny_sr, x, self_ensemble=True, tile_size=7, fast=False)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)


def test_fast_path_is_close_and_returns_float32(tiny_sr: TinySR) -> None:
    x = torch.rand(2, 3, 16, 12)
    reference = enhance(tiny_sr, x, fast=False)
    fast = enhance(tiny_sr, x, tile_size=8, fast=True)
    assert fast.dtype == torch.float32 and fast.shape == reference.shape
    assert fast.is_contiguous() and 0 <= fast.min() and fast.max() <= 1
    torch.testing.assert_close(fast, reference, rtol=0, atol=3e-2)


def test_prepare_model_moves_converts_and_sets_eval() -> None:
    model = TinySR().train()
    prepared = prepare_model(model, "cpu", fast=True)
    assert prepared is model and not prepared.training
    assert prepared.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert not prepared.head.weight.is_contiguous()
    plain = prepare_model(TinySR(), "cpu", fast=False)
    assert plain.head.weight.is_contiguous()
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(
        enhance(prepared, x, fast=False), enhance(model, x.contiguous(), fast=False)
    )


def test_result_is_an_ordinary_tensor_and_modes_are_restored(tiny_sr: TinySR) -> None:
    tiny_sr.train()
    tiny_sr.head.eval()  # a mixed state, e.g. a frozen part of a model being trained
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    out = enhance(tiny_sr, x, fast=False)
    assert tiny_sr.training and tiny_sr.tail.training and not tiny_sr.head.training
    assert not out.is_inference() and not out.requires_grad
    assert out.dtype == torch.float32
    out.mul_(2)  # in-place use outside inference mode must be allowed


def test_invalid_arguments_are_named(tiny_sr: TinySR) -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(3, 8, 8\)"):
        enhance(tiny_sr, torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match=r"got \(1, 1, 8, 8\)"):
        enhance(tiny_sr, torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="dtype torch.uint8"):
        enhance(tiny_sr, torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="tile_size must be a positive int or None, got 0"):
        enhance(tiny_sr, torch.rand(1, 3, 8, 8), tile_size=0)
    with pytest.raises(ValueError, match="tile_overlap must be >= 0, got -1"):
        enhance(tiny_sr, torch.rand(1, 3, 8, 8), tile_size=4, tile_overlap=-1)
    with pytest.raises(ValueError, match="fast must be True, False or 'auto', got 'yes'"):
        enhance(tiny_sr, torch.rand(1, 3, 8, 8), fast="yes")  # type: ignore[arg-type]


def test_tiling_a_model_without_receptive_radius_needs_overlap() -> None:
    model = NearestX2()
    model.receptive_radius = None  # type: ignore[assignment]
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="no receptive_radius attribute; pass tile_overlap="):
        enhance(model, x, tile_size=4)
    torch.testing.assert_close(
        enhance(model, x, tile_size=4, tile_overlap=0), enhance(model, x, fast=False)
    )


def test_fast_path_supported_on_unknown_device_is_false() -> None:
    assert fast_path_supported("meta") is False
    if not torch.cuda.is_available():
        assert fast_path_supported("cuda") is False


def test_fast_path_supported_answers_for_the_gpu_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node with a Volta (7.0) as GPU 0 and a Hopper (9.0) as GPU 1, current device 0: the
    answer for "cuda:1" is GPU 1's. (The CUDA runtime is stood in for: no GPU here.)"""
    capabilities = {0: (7, 0), 1: (9, 0)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: capabilities[i or 0])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda **_: capabilities[0] >= (8, 0))
    monkeypatch.delenv("NIE_FAST_PATH", raising=False)
    assert fast_path_supported("cuda:1") is True
    assert fast_path_supported("cuda:0") is False
    assert fast_path_supported("cuda") is False  # the current device, 0
    assert fast_path_supported("cuda:2") is False  # no such GPU


@pytest.mark.parametrize(
    ("cap", "native"),
    [
        (None, True),
        ("AVX2", False),
        ("avx512_core", False),
        ("SSE41", False),
        ("AVX512_CORE_BF16", True),
        ("AVX512_CORE_AMX", True),
        ("ALL", True),
    ],
)
def test_cpu_fast_path_follows_the_onednn_isa_cap(
    monkeypatch: pytest.MonkeyPatch, cap: str | None, native: bool
) -> None:
    """An AVX-512 BF16 + AMX CPU capped by ONEDNN_MAX_CPU_ISA below AVX512_CORE_BF16 computes bf16
    like an AVX2-only one (emulated): no fast path there. (The CPU's flags are stood in for.)"""
    from nie_core.inference import fast_path

    flags = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    monkeypatch.setattr(fast_path, "cpuinfo_flags", lambda: flags)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.delenv("NIE_FAST_PATH", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert fast_path.cpu_bf16_native() is native
    assert fast_path_supported("cpu") is native
    assert ("amx_bf16" in fast_path.usable_cpu_flags()) is (cap in (None, "AVX512_CORE_AMX", "ALL"))
    assert "avx2" in fast_path.usable_cpu_flags()  # only bf16 flags are capped away
    monkeypatch.setenv("NIE_FAST_PATH", "off")
    assert fast_path_supported("cpu") is False


def test_cpu_without_bf16_flags_has_no_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from nie_core.inference import fast_path

    monkeypatch.setattr(fast_path, "cpuinfo_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("NIE_FAST_PATH", raising=False)
    assert fast_path_supported("cpu") is False and fast_path.cpu_bf16_native() is False


def test_score_resizes_with_antialiasing() -> None:
    torch.manual_seed(0)
    scorer = RecordingScorer()
    # A one-pixel checkerboard: bilinear sampling at 1/3 size without antialiasing would keep
    # pure black/white pixels; with antialiasing it averages to grey.
    board = ((torch.arange(672)[:, None] + torch.arange(672)[None, :]) % 2).float()
    x = board.expand(2, 3, 672, 672)
    probs = score(scorer, x)
    assert probs.shape == (2, 10) and not probs.is_inference()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))
    seen = scorer.seen[-1]
    assert seen.shape == (2, 3, 224, 224)
    assert seen.std() < 0.05


def test_score_without_resize_and_size_independence() -> None:
    torch.manual_seed(0)
    scorer = RecordingScorer()
    x = torch.rand(1, 3, 40, 60)
    probs = score(scorer, x, resize=None)
    assert scorer.seen[-1].shape == (1, 3, 40, 60)
    with torch.no_grad():
        torch.testing.assert_close(probs, scorer(x))
    # A flat colour scores the same at any size once resized.
    flat_small = torch.full((1, 3, 50, 80), 0.3)
    flat_large = torch.full((1, 3, 300, 200), 0.3)
    torch.testing.assert_close(score(scorer, flat_small), score(scorer, flat_large))
    with pytest.raises(ValueError, match="resize must be a positive size, None or 'auto', got 0"):
        score(scorer, x, resize=0)


@pytest.mark.parametrize(
    ("name", "kwargs", "scale"),
    [
        ("edsr_baseline", {"scale": 2, "n_resblocks": 2}, 2),
        ("mdsr_baseline", {"scales": (2, 3), "n_resblocks": 1, "n_feats": 16}, 3),
    ],
)
def test_registered_models_tile_seamlessly(name: str, kwargs: dict, scale: int) -> None:
    models = pytest.importorskip("nie_core.models")
    torch.manual_seed(0)
    model = models.create_model(name, **kwargs).eval()
    x = torch.rand(1, 3, 26, 19)
    whole = enhance(model, x, scale=scale, fast=False)
    assert whole.shape == (1, 3, 26 * scale, 19 * scale)
    tiled = enhance(model, x, scale=scale, tile_size=10, fast=False)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
