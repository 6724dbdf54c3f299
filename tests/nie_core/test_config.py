from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from nie_core.config import (
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)


@dataclass(frozen=True)
class ModelSection:
    name: Literal["edsr_baseline", "edsr", "mdsr"] = "edsr_baseline"
    scale: int = 2
    scales: tuple[int, ...] = (2, 3, 4)


@dataclass(frozen=True)
class OptimSection:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    milestones: list[int] = field(default_factory=lambda: [200, 400])


@dataclass(frozen=True)
class TrainSection:
    epochs: int = 10
    optim: OptimSection = field(default_factory=OptimSection)
    loss_weights: dict[str, float] = field(default_factory=lambda: {"pixel": 1.0})


@dataclass(frozen=True)
class ExperimentConfig:
    run_name: str = "run"
    seed: int = 0
    amp: bool = False
    output_dir: Path = Path("runs")
    notes: str | None = None
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)


@dataclass(frozen=True)
class NeedsDataRoot:
    data_root: str
    batch_size: int = 16


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_overrides() -> None:
    assert load_config(ExperimentConfig) == ExperimentConfig()


def test_file_values_nested_and_converted(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "seed: 3\nmodel:\n  name: mdsr\n  scales: [2, 4]\ntrain:\n  optim:\n    lr: 1\n",
    )
    cfg = load_config(ExperimentConfig, path)
    assert cfg.seed == 3
    assert cfg.model == ModelSection(name="mdsr", scale=2, scales=(2, 4))
    assert isinstance(cfg.model.scales, tuple)
    assert cfg.train.optim.lr == 1.0 and isinstance(cfg.train.optim.lr, float)  # int accepted
    assert cfg.train.optim.betas == (0.9, 0.999)  # sibling default kept
    assert cfg.train.epochs == 10


def test_nested_override_applies_over_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "train:\n  epochs: 5\n  optim:\n    lr: 0.01\n")
    cfg = load_config(
        ExperimentConfig,
        path,
        overrides=["train.optim.lr=1e-3", "model.scale=4", "train.loss_weights.aesthetic=0.5"],
    )
    assert cfg.train.optim.lr == pytest.approx(1e-3)  # YAML 1.1 would read "1e-3" as a str
    assert cfg.train.epochs == 5
    assert cfg.model.scale == 4
    assert cfg.train.loss_weights == {"aesthetic": 0.5}


def test_override_values_are_yaml() -> None:
    cfg = load_config(
        ExperimentConfig,
        overrides=["model.scales=[3]", "amp=true", "notes=null", "run_name=yes", "output_dir=/x/y"],
    )
    assert cfg.model.scales == (3,)
    assert cfg.amp is True
    assert cfg.notes is None
    assert cfg.run_name == "yes"  # a str field keeps the text YAML would have read as a bool
    assert cfg.output_dir == Path("/x/y")


def test_unknown_top_level_key_in_file_suggests_match(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "sed: 1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'sed'.*did you mean 'seed'"):
        load_config(ExperimentConfig, path)


def test_unknown_nested_key_in_file_names_dotted_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "train:\n  optim:\n    lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"'train\.optim\.lrr'.*did you mean 'train\.optim\.lr'"):
        load_config(ExperimentConfig, path)


def test_unknown_nested_key_in_override_suggests_match() -> None:
    with pytest.raises(ConfigError, match=r"'model\.sacle'.*did you mean 'model\.scale'"):
        load_config(ExperimentConfig, overrides=["model.sacle=3"])


def test_override_below_a_scalar_field_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"'seed' has type int, it has no key 'low'"):
        load_config(ExperimentConfig, overrides=["seed.low=3"])


@pytest.mark.parametrize("override", ["model.scale", "=3", "model..scale=3", "train.=1"])
def test_malformed_override_is_rejected(override: str) -> None:
    with pytest.raises(ConfigError, match="malformed override"):
        load_config(ExperimentConfig, overrides=[override])


def test_single_string_instead_of_override_list_is_rejected() -> None:
    with pytest.raises(ConfigError, match="list of 'key=value'"):
        load_config(ExperimentConfig, overrides="seed=1")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=1.5", r"'seed': expected int, got float 1\.5"),
        ("seed=true", r"'seed': expected int, got bool True"),
        ("amp=1", r"'amp': expected bool, got int 1"),
        ("train.optim.lr=fast", r"'train\.optim\.lr': expected float, got str 'fast'"),
        ("train.optim.betas=[0.9]", r"'train\.optim\.betas': expected .* 2 items, got 1"),
        ("model.scales=[2, x]", r"'model\.scales\[1\]': expected int, got str 'x'"),
        ("train.loss_weights={pixel: a}", r"'train\.loss_weights\.pixel': expected float"),
        ("train.optim=3", r"'train\.optim': expected a mapping of OptimSection fields"),
    ],
)
def test_wrong_type_names_key_expected_and_got(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(ExperimentConfig, overrides=[override])


def test_literal_violation_lists_the_options(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "model:\n  name: srcnn\n")
    with pytest.raises(
        ConfigError, match=r"'model\.name': expected one of 'edsr_baseline'.*'srcnn'"
    ):
        load_config(ExperimentConfig, path)


def test_missing_required_field_is_reported() -> None:
    with pytest.raises(ConfigError, match="missing required config key 'data_root'"):
        load_config(NeedsDataRoot)
    assert load_config(NeedsDataRoot, overrides=["data_root=/d"]).data_root == "/d"


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(ExperimentConfig, tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(ExperimentConfig, write_yaml(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(ExperimentConfig, write_yaml(tmp_path, "seed: [1\n"))
    assert load_config(ExperimentConfig, write_yaml(tmp_path, "")) == ExperimentConfig()


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_config(ExperimentConfig, overrides=["nope=1"])


def test_round_trip_through_dict_and_yaml(tmp_path: Path) -> None:
    cfg = load_config(
        ExperimentConfig,
        overrides=[
            "model.name=mdsr",
            "model.scales=[2,3]",
            "train.optim.lr=2.5e-4",
            "train.optim.milestones=[1,2,3]",
            "notes=hello",
            "output_dir=out/dir",
        ],
    )
    plain = config_to_dict(cfg)
    assert plain["model"]["scales"] == [2, 3]  # tuples become lists
    assert plain["output_dir"] == "out/dir"
    assert config_from_dict(ExperimentConfig, plain) == cfg

    path = save_config(cfg, tmp_path / "nested" / "saved.yaml")
    assert load_config(ExperimentConfig, path) == cfg


def test_config_from_dict_does_not_modify_input() -> None:
    data = {"train": {"epochs": 2}}
    cfg = config_from_dict(ExperimentConfig, data, overrides=["train.epochs=7"])
    assert cfg.train.epochs == 7
    assert data == {"train": {"epochs": 2}}


def test_result_is_frozen() -> None:
    cfg = load_config(ExperimentConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
