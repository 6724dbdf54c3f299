from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from nie_core.checkpoint import (
    CHECKPOINT_FILENAME,
    load_checkpoint,
    load_model,
    save_checkpoint,
    write_resolved_config,
)


class TinyNet(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.register_buffer("offset", torch.zeros(1, width, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.offset


class Unpicklable:
    """Stand-in for an arbitrary object that weights_only loading must refuse."""

    def __init__(self) -> None:
        self.value = 1


def make_state(width: int = 4, seed: int = 0) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = TinyNet(width)
    return {
        "model_name": "tiny",
        "model_kwargs": {"width": width},
        "model": model.state_dict(),
        "epoch": 3,
        "global_step": 120,
        "config": {"train": {"lr": 1e-4, "milestones": [2, 4]}, "tag": None},
    }


@pytest.fixture
def tiny_registry(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Install a stand-in ``nie_core.models`` whose create_model builds TinyNet."""
    calls: list[dict[str, Any]] = []

    def create_model(name: str, **kwargs: Any) -> nn.Module:
        if name != "tiny":
            raise ValueError(f"unknown model {name!r}")
        calls.append(kwargs)
        return TinyNet(**kwargs)

    module = types.ModuleType("nie_core.models")
    module.create_model = create_model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nie_core.models", module)
    return calls


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    state = make_state()
    model = TinyNet()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 3, 4, 4)).sum().backward()
    optimizer.step()
    state["optimizer"] = optimizer.state_dict()
    state["scheduler"] = torch.optim.lr_scheduler.MultiStepLR(optimizer, [2, 4]).state_dict()
    path = save_checkpoint(tmp_path / "run" / "checkpoint.pt", state)
    loaded = load_checkpoint(path)
    assert loaded["model_name"] == "tiny"
    assert loaded["epoch"] == 3 and loaded["global_step"] == 120
    assert loaded["config"] == state["config"]
    assert loaded["scheduler"]["milestones"] == {2: 1, 4: 1}  # a Counter
    torch.testing.assert_close(
        loaded["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"]
    )
    for key, tensor in state["model"].items():
        assert torch.equal(loaded["model"][key], tensor)
    # A run directory resolves to the checkpoint.pt inside it.
    assert load_checkpoint(tmp_path / "run")["epoch"] == 3


def test_save_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT_FILENAME
    save_checkpoint(path, make_state(seed=0))
    new_state = make_state(seed=1)
    save_checkpoint(path, new_state)
    assert torch.equal(
        load_checkpoint(path)["model"]["conv.weight"], new_state["model"]["conv.weight"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILENAME]


def test_failure_mid_write_keeps_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / CHECKPOINT_FILENAME
    old_state = make_state(seed=0)
    save_checkpoint(path, old_state)
    old_bytes = path.read_bytes()

    def torch_save_that_dies(obj: Any, file: Any) -> None:
        file.write(b"PK\x03\x04 partial checkpoint bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torch_save_that_dies)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, make_state(seed=1))
    monkeypatch.undo()

    assert path.read_bytes() == old_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILENAME]
    assert torch.equal(
        load_checkpoint(path)["model"]["conv.weight"], old_state["model"]["conv.weight"]
    )


def test_state_that_safe_loading_refuses_is_not_saved(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT_FILENAME
    save_checkpoint(path, make_state())
    old_bytes = path.read_bytes()
    state = make_state()
    state["rng"] = {"numpy": np.int64(7)}
    with pytest.raises(ValueError, match=r"weights_only=True\) refuses(.|\n)*numpy"):
        save_checkpoint(path, state)
    assert path.read_bytes() == old_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILENAME]


def test_missing_required_keys_are_named(tmp_path: Path) -> None:
    state = make_state()
    del state["model_kwargs"]
    with pytest.raises(ValueError, match="model_kwargs"):
        save_checkpoint(tmp_path / "c.pt", state)
    assert not (tmp_path / "c.pt").exists()


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    absent = tmp_path / "absent.pt"
    with pytest.raises(ValueError, match="checkpoint not found: .*absent.pt"):
        load_checkpoint(absent)
    with pytest.raises(ValueError, match=f"not found: .*{CHECKPOINT_FILENAME}"):
        load_checkpoint(tmp_path)  # a directory without checkpoint.pt

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt' is not a readable checkpoint"):
        load_checkpoint(junk)

    a_list = tmp_path / "list.pt"
    torch.save([1, 2, 3], a_list)
    with pytest.raises(ValueError, match="list.pt' holds a list, not a checkpoint dict"):
        load_checkpoint(a_list)


def test_load_refuses_arbitrary_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": Unpicklable()}, path)  # bypasses save_checkpoint's check
    with pytest.raises(ValueError, match="evil.pt' is not a readable checkpoint"):
        load_checkpoint(path)


def test_load_model_rebuilds_from_name_and_kwargs(tmp_path: Path, tiny_registry: list) -> None:
    state = make_state(width=6)
    state["model_kwargs"] = {"width": 6, "weights": "/no/longer/there.pt"}
    save_checkpoint(tmp_path / CHECKPOINT_FILENAME, state)

    model = load_model(tmp_path)
    assert tiny_registry == [{"width": 6}]  # the stale weights argument is dropped
    assert not model.training
    x = torch.rand(1, 3, 5, 5)
    reference = TinyNet(6)
    reference.load_state_dict(state["model"])
    torch.testing.assert_close(model(x), reference(x))


def test_load_model_strips_ddp_prefix(tmp_path: Path, tiny_registry: list) -> None:
    state = make_state()
    state["model"] = {f"module.{key}": value for key, value in state["model"].items()}
    path = save_checkpoint(tmp_path / "ddp.pt", state)
    model = load_model(path)
    assert torch.equal(model.conv.weight, state["model"]["module.conv.weight"])


def test_load_model_with_mismatched_weights(tmp_path: Path, tiny_registry: list) -> None:
    state = make_state(width=4)
    state["model_kwargs"] = {"width": 8}
    path = save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(ValueError, match=r"weights in '.*bad.pt' do not fit tiny"):
        load_model(path)


@dataclass(frozen=True)
class SmallConfig:
    scale: int = 2
    scales: tuple[int, ...] = (2, 3)
    out: Path = Path("runs/x")
    extra: dict[str, float] = field(default_factory=lambda: {"gamma": 0.1})


def test_write_resolved_config(tmp_path: Path) -> None:
    path = write_resolved_config(tmp_path / "run", SmallConfig())
    assert path == tmp_path / "run" / "config.yaml"
    assert yaml.safe_load(path.read_text()) == {
        "scale": 2,
        "scales": [2, 3],
        "out": "runs/x",
        "extra": {"gamma": 0.1},
    }
    write_resolved_config(tmp_path / "run", {"a": (1, 2), "b": {"c": "d"}})
    assert yaml.safe_load(path.read_text()) == {"a": [1, 2], "b": {"c": "d"}}
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml"]
