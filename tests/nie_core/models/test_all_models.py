"""Checks every registered model passes, parametrised over ``list_models()``.

Each registered name needs an entry in :data:`TINY`: the smallest builds worth testing (a few
features, one residual block, random weights). A model registered without one fails
``test_every_registered_model_has_tiny_builds``, so a new model cannot go untested.
Nothing is downloaded: every build uses random weights, and torch hub downloads raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import torch
from torch import nn

from nie_core.checkpoint import load_checkpoint, load_model, save_checkpoint
from nie_core.inference import enhance
from nie_core.models import BACKBONES, create_model, list_models


@dataclass(frozen=True)
class Tiny:
    """Small builds of one registered model.

    ``role``: "enhancer" (image -> image, ``scale`` or ``scales`` and ``receptive_radius``, run
    by ``nie_core.inference.enhance``) or "scorer" (image -> (N, 10) score distribution).
    ``builds``: test id -> builder keyword arguments.
    """

    role: Literal["enhancer", "scorer"]
    builds: dict[str, dict[str, Any]]


# One residual block and 8 features: enough for every layer kind to be present (a ResBlock, the
# upsampler, the mean shifts) at a few thousand parameters. Scale 1 is the deblurring variant.
_SR = {"n_resblocks": 1, "n_feats": 8}
_EDSR_BUILDS = {f"x{s}": {"scale": s, **_SR} for s in (1, 2, 3, 4)}
_MDSR_BUILDS = {"x2x3x4": {"scales": (2, 3, 4), **_SR}, "x3": {"scales": (3,), **_SR}}

TINY: dict[str, Tiny] = {
    "edsr": Tiny("enhancer", _EDSR_BUILDS),
    "edsr_baseline": Tiny("enhancer", _EDSR_BUILDS),
    "mdsr": Tiny("enhancer", _MDSR_BUILDS),
    "mdsr_baseline": Tiny("enhancer", _MDSR_BUILDS),
    # NIMA has no width option: its backbone is the knob, and every backbone is covered.
    "nima": Tiny("scorer", {backbone: {"backbone": backbone} for backbone in BACKBONES}),
}


def _cases(role: str | None = None) -> list[Any]:
    return [
        pytest.param(name, kwargs, id=f"{name}-{label}")
        for name in list_models()
        if name in TINY and role in (None, TINY[name].role)
        for label, kwargs in TINY[name].builds.items()
    ]


pytestmark = pytest.mark.usefixtures("no_downloads")  # see conftest.py


def _build(name: str, kwargs: dict[str, Any], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **kwargs)


def _scales(model: nn.Module) -> tuple[int, ...]:
    """An enhancer's upscaling factors: ``scales`` of a multi-scale model, else ``(scale,)``."""
    scales = getattr(model, "scales", None)
    return tuple(scales) if scales is not None else (model.scale,)


def _outputs(name: str, model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The model's outputs for ``x``: one per scale for an enhancer, one for a scorer."""
    if TINY[name].role == "scorer":
        return [model(x)]
    return [_upscale(model, x, scale) for scale in _scales(model)]


def _upscale(model: nn.Module, x: torch.Tensor, scale: int) -> torch.Tensor:
    """An enhancer's forward pass at ``scale`` (MDSR-like models take it as an argument)."""
    return model(x, scale) if hasattr(model, "scales") else model(x)


# Input sizes (H, W), square and not, odd and even: the enhancers take any size; the NIMA
# backbones downsample by 32, so 64 is about the smallest sensible side.
_SIZES = {"enhancer": ((7, 5), (4, 9)), "scorer": ((64, 64), (64, 96), (97, 70))}


def _input_size(name: str) -> tuple[int, int]:
    return _SIZES[TINY[name].role][0]


def _image(size: tuple[int, int], batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_has_tiny_builds(name: str) -> None:
    assert name in TINY, f"{name!r} is registered but has no tiny builds in TINY: add them"
    assert TINY[name].role in ("enhancer", "scorer")
    assert TINY[name].builds, f"TINY[{name!r}] lists no builds"


def test_tiny_builds_name_only_registered_models() -> None:
    assert set(TINY) <= set(list_models())


@pytest.mark.parametrize(("name", "kwargs"), _cases())
def test_output_shape_and_batch_independence(name: str, kwargs: dict[str, Any]) -> None:
    """Float RGB (N, 3, H, W) in [0, 1] -> (N, 3, H*s, W*s) for every scale s of an enhancer,
    (N, 10) probabilities for a scorer; in eval mode each row depends on its own image only."""
    model = _build(name, kwargs).eval()
    for height, width in _SIZES[TINY[name].role]:
        x = _image((height, width))
        with torch.no_grad():
            outputs = _outputs(name, model, x)
            alone = _outputs(name, model, x[1:])
        if TINY[name].role == "scorer":
            (probs,) = outputs
            assert probs.shape == (2, 10)
            assert probs.dtype == torch.float32
            assert (probs >= 0).all()
            torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))
        else:
            if "scale" in kwargs:
                assert _scales(model) == (kwargs["scale"],)
            if "scales" in kwargs:
                assert _scales(model) == tuple(kwargs["scales"])
            for scale, out in zip(_scales(model), outputs, strict=True):
                assert out.shape == (2, 3, height * scale, width * scale)
                assert out.dtype == torch.float32
                assert torch.isfinite(out).all()
        for out, out_alone in zip(outputs, alone, strict=True):
            torch.testing.assert_close(out[1:], out_alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "kwargs"), _cases())
def test_backward_gives_every_parameter_and_the_pixels_a_gradient(
    name: str, kwargs: dict[str, Any]
) -> None:
    """In train mode a backward pass reaches every trainable parameter with finite, non-zero
    gradients, and the input pixels too (NIMA serves as a loss on generated images).

    No parameter is exempt: MDSR's per-scale branches get a gradient only from their own
    scale, so every scale is run (test_mdsr.py checks that the other branches then get none).
    The loss projects each output on fixed random weights: a plain sum of NIMA's
    probabilities is always 1 and would give no gradient at all.
    """
    model = _build(name, kwargs).train()
    x = _image(_input_size(name)).requires_grad_(True)
    projection = torch.Generator().manual_seed(2)
    loss = sum(
        (out * torch.randn(out.shape, generator=projection)).mean()
        for out in _outputs(name, model, x)
    )
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for param_name, param in trainable:
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, f"{param_name} got an all-zero gradient"
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize(("name", "kwargs"), _cases("enhancer"))
def test_tiled_inference_equals_untiled(name: str, kwargs: dict[str, Any]) -> None:
    """``enhance`` with tiles overlapping by ``receptive_radius`` (its default) gives the
    untiled output in float32, which is the model's own output clamped to [0, 1]; without the
    overlap the seams show."""
    model = _build(name, kwargs).eval()
    radius = model.receptive_radius
    assert isinstance(radius, int) and radius > 0
    # Three tiles per side, the middle one surrounded by a full margin of real pixels.
    tile = radius + 2
    x = _image((3 * tile, 3 * tile - 1), batch=1)
    for scale in _scales(model):
        with torch.no_grad():
            reference = _upscale(model, x, scale).clamp(0.0, 1.0)
        untiled = enhance(model, x, scale=scale, fast=False)
        tiled = enhance(model, x, scale=scale, tile_size=tile, fast=False)
        explicit = enhance(model, x, scale=scale, tile_size=tile, tile_overlap=radius, fast=False)
        seamed = enhance(model, x, scale=scale, tile_size=tile, tile_overlap=0, fast=False)
        assert tiled.dtype == untiled.dtype == torch.float32
        torch.testing.assert_close(untiled, reference, rtol=0, atol=1e-6)
        torch.testing.assert_close(tiled, untiled, rtol=0, atol=1e-6)
        torch.testing.assert_close(explicit, tiled, rtol=0, atol=0)
        assert (seamed - untiled).abs().max() > 1e-3, "tiling without overlap went unnoticed"


@pytest.mark.parametrize(("name", "kwargs"), _cases())
def test_checkpoint_round_trip(name: str, kwargs: dict[str, Any], tmp_path: Path) -> None:
    """save_checkpoint then load_model gives back the same state (parameters and buffers,
    e.g. BatchNorm running statistics) and bit-identical outputs."""
    model = _build(name, kwargs)
    x = _image(_input_size(name))
    with torch.no_grad():
        _outputs(name, model.train(), x)  # moves BatchNorm running statistics off their init
        expected = _outputs(name, model.eval(), x)
    state = {"model_name": name, "model_kwargs": kwargs, "model": model.state_dict()}
    path = save_checkpoint(tmp_path / "checkpoint.pt", state)

    assert load_checkpoint(tmp_path)["model_kwargs"] == kwargs
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert list(restored) == list(original)
    for key, tensor in original.items():
        assert restored[key].dtype == tensor.dtype, key
        assert torch.equal(restored[key], tensor), key
    with torch.no_grad():
        got = _outputs(name, loaded, x)
        fresh = _outputs(name, _build(name, kwargs, seed=1).eval(), x)
    for out, want, other in zip(got, expected, fresh, strict=True):
        torch.testing.assert_close(out, want, rtol=0, atol=0)
        assert not torch.equal(other, want)  # a fresh build differs: the weights were loaded


@pytest.mark.parametrize(("name", "kwargs"), _cases())
def test_weights_argument_loads_a_state_dict_or_a_checkpoint(
    name: str, kwargs: dict[str, Any], tmp_path: Path
) -> None:
    """The builders' ``weights=`` takes a file of this project's: a bare state dict or a
    checkpoint dict with it under "model", as a Path or a str; outputs are then bit-identical."""
    model = _build(name, kwargs).eval()
    torch.save(model.state_dict(), tmp_path / "state.pt")
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pt")
    x = _image(_input_size(name), batch=1)
    with torch.no_grad():
        expected = _outputs(name, model, x)
        for weights in (tmp_path / "state.pt", str(tmp_path / "checkpoint.pt")):
            loaded = create_model(name, weights=weights, **kwargs).eval()
            for out, want in zip(_outputs(name, loaded, x), expected, strict=True):
                torch.testing.assert_close(out, want, rtol=0, atol=0)
