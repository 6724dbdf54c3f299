"""Name -> builder registry behind :func:`create_model`.

Builders register themselves with ``@register_model("name")`` when their module is imported;
``nie_core.models`` imports every model module, so all names are known once it is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder under ``name``; a name can be registered once."""

    def decorator(builder: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"model name {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorator


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_BUILDERS)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered under ``name``; ValueError listing the known names otherwise."""
    try:
        return _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {list_models()}") from None


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model registered under ``name``, passing ``kwargs`` to its builder.

    ``weights`` naming a model-zoo tag (e.g. ``weights="nie-photos"``) loads the shipped
    weights of ``nie_core.models.zoo`` instead; the other ``kwargs`` must fit that file.
    """
    from nie_core.models import zoo

    weights = kwargs.get("weights")
    if zoo.is_zoo_tag(weights):
        get_model_builder(name)  # unknown names fail as usual
        rest = {key: value for key, value in kwargs.items() if key != "weights"}
        return zoo.load_zoo_weights(name, str(weights), **rest)
    return get_model_builder(name)(**kwargs)
