"""The enhancer job's loss and optimiser pieces without a cluster: build_loss from the recipes,
the learning-rate warm-up, the in-process fine-tune, and the NIMA job's zoo start."""

from __future__ import annotations

import pytest
import torch

from nie_core.config import load_config
from nie_core.losses.guards import GamingGuard
from ray_jobs.config import RECIPES, EnhancerJobConfig, NimaJobConfig
from ray_jobs.enhancer import build_loss, load_scorer, warmed_up


def test_the_demo_recipes_build_the_loss_they_name() -> None:
    l2 = load_config(EnhancerJobConfig, RECIPES / "demo_edsr_l2.yaml")
    hybrid = load_config(EnhancerJobConfig, RECIPES / "demo_edsr_hybrid.yaml")
    assert build_loss(l2, load_scorer(l2)).scorer is None  # gamma 0: the scorer is left out
    loss = build_loss(hybrid, load_scorer(hybrid))
    assert loss.gamma == hybrid.loss.gamma > 0 and loss.scorer is not None
    assert loss.guard == hybrid.loss.guard
    assert loss.guard.transforms or loss.guard.edge_weight > 0  # the demo trains with remedies


def test_guard_overrides_reach_the_loss_and_are_checked() -> None:
    cfg = load_config(EnhancerJobConfig, RECIPES / "demo_edsr_hybrid.yaml",
                      ["loss.guard.views=3", "loss.guard.scales=[1.0,0.5]"])  # fmt: skip
    assert cfg.loss.guard == GamingGuard(**{**cfg.loss.guard.__dict__, "views": 3,
                                            "scales": (1.0, 0.5)})  # fmt: skip
    with pytest.raises(Exception, match="loss.guard.nope"):
        load_config(EnhancerJobConfig, RECIPES / "demo_edsr_hybrid.yaml", ["loss.guard.nope=1"])


def test_warm_up_scales_the_rate_for_one_step_and_gives_it_back() -> None:
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.4)
    seen = []
    for step in range(5):
        with warmed_up(optimizer, step, warmup_steps=4):
            seen.append(optimizer.param_groups[0]["lr"])
        assert optimizer.param_groups[0]["lr"] == 0.4
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4])
    with warmed_up(optimizer, 0, warmup_steps=0):
        assert optimizer.param_groups[0]["lr"] == 0.4


def test_nima_job_can_start_from_the_zoo_scorer() -> None:
    from ray_jobs.nima import _build_model

    cfg = load_config(NimaJobConfig, RECIPES / "demo_nima_hardening.yaml")
    assert cfg.model.weights == "zoo:nima@nie-quality"
    from nie_core.models.zoo import load_zoo_uri

    zoo = load_zoo_uri("zoo:nima@nie-quality")
    model = _build_model(cfg)
    for name, tensor in zoo.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    wrong = load_config(NimaJobConfig, RECIPES / "demo_nima_hardening.yaml",
                        ["model.input_size=224"])  # fmt: skip
    with pytest.raises(ValueError, match="input_size"):
        _build_model(wrong)
    edsr = load_config(NimaJobConfig, RECIPES / "demo_nima_hardening.yaml",
                       ["model.weights=zoo:edsr_baseline-x2@nie-photos"])  # fmt: skip
    with pytest.raises(ValueError, match="not a NIMA"):
        _build_model(edsr)
