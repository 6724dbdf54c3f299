from __future__ import annotations

from unittest import mock

import pytest
from torch import nn

from nie_core.models import EDSR, MDSR, NIMA, _registry, create_model, list_models, register_model


def test_contract_names_are_registered() -> None:
    names = list_models()
    assert {"nima", "edsr_baseline", "edsr", "mdsr_baseline", "mdsr"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize(
    ("name", "kwargs", "cls"),
    [
        ("nima", {"backbone": "mnasnet0_5"}, NIMA),
        ("edsr_baseline", {"scale": 3, "n_resblocks": 1, "n_feats": 4}, EDSR),
        ("edsr", {"scale": 4, "n_resblocks": 1, "n_feats": 4}, EDSR),
        ("mdsr_baseline", {"scales": (2,), "n_resblocks": 1, "n_feats": 4}, MDSR),
        ("mdsr", {"scales": (4, 3), "n_resblocks": 1, "n_feats": 4}, MDSR),
    ],
)
def test_create_model_builds_the_named_model_with_its_kwargs(name, kwargs, cls) -> None:
    model = create_model(name, **kwargs)
    assert type(model) is cls
    if "scale" in kwargs:
        assert model.scale == kwargs["scale"]
    if "scales" in kwargs:
        assert model.scales == kwargs["scales"]


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'srcnn'.*'edsr'.*'nima'"):
        create_model("srcnn")


def test_builders_take_keyword_arguments_only() -> None:
    from nie_core.models import edsr_baseline

    with pytest.raises(TypeError):
        edsr_baseline(2)  # type: ignore[misc]


def test_register_model_adds_a_builder_and_refuses_duplicates() -> None:
    with mock.patch.dict(_registry._BUILDERS):  # restore the global registry afterwards

        @register_model("tiny_identity")
        def tiny_identity(*, scale: int = 1) -> nn.Module:
            module = nn.Identity()
            module.scale = scale
            return module

        assert "tiny_identity" in list_models()
        assert create_model("tiny_identity", scale=5).scale == 5
        with pytest.raises(ValueError, match="'tiny_identity' is already registered"):
            register_model("tiny_identity")(tiny_identity)
        with pytest.raises(ValueError, match="'edsr' is already registered"):
            register_model("edsr")(tiny_identity)
    assert "tiny_identity" not in list_models()
