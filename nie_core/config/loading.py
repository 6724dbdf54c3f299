"""Loading and saving configs: a YAML file or a plain mapping, then ``"dotted.key=value"``
overrides, in; YAML out.

A YAML file mirrors the dataclass: one mapping level per nested dataclass. Overrides are
``"dotted.key=value"`` strings whose value is read as YAML, so ``train.lr=1e-3``,
``model.scales=[2,3]`` and ``run_name=null`` all work; a misspelt key fails before anything is
merged. The merged mapping goes through :mod:`~nie_core.config.convert`, which checks it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nie_core.config.convert import (
    ConfigError,
    OverrideScalar,
    build_dataclass,
    check_key_path,
    to_plain,
)

__all__ = ["config_from_dict", "config_to_dict", "load_config", "save_config"]

ConfigT = TypeVar("ConfigT")


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` (no dot) as a float, as YAML 1.2 does."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_config(
    cls: type[ConfigT],
    path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] | None = (),
) -> ConfigT:
    """Build ``cls`` from an optional YAML file, then apply ``"dotted.key=value"`` overrides.

    Fields missing from the file keep their dataclass defaults. Raises :class:`ConfigError` for
    a missing or malformed file, malformed overrides, unknown keys (with close-match
    suggestions), missing required fields and values of the wrong type.
    """
    data = _read_yaml_mapping(Path(path)) if path is not None else {}
    return config_from_dict(cls, data, overrides)


def config_from_dict(
    cls: type[ConfigT], data: Mapping[str, Any], overrides: Iterable[str] | None = ()
) -> ConfigT:
    """Build ``cls`` from a plain nested mapping (as made by :func:`config_to_dict`).

    ``overrides`` are applied on top, as in :func:`load_config`; ``data`` is not modified.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"config class must be a dataclass, got {cls!r}")
    if isinstance(overrides, str):
        raise ConfigError(
            f"overrides must be a list of 'key=value' strings, got the str {overrides!r}"
        )
    if not isinstance(data, Mapping):
        raise ConfigError(f"config data must be a mapping, got {type(data).__name__}")
    merged = _deep_copy_mappings(data)
    for override in overrides or ():
        _apply_override(cls, merged, override)
    return build_dataclass(cls, merged, prefix="", base=None)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Convert a config dataclass instance (or a mapping) to plain dicts, lists and scalars.

    Tuples become lists and paths become strings, so the result can be written as YAML and read
    back with :func:`config_from_dict` or :func:`load_config` to an equal config.
    """
    is_instance = dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)
    if not (is_instance or isinstance(cfg, Mapping)):
        raise ConfigError(
            f"expected a config dataclass instance or a mapping, got {type(cfg).__name__}"
        )
    return to_plain(cfg)


def save_config(cfg: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``cfg`` as YAML (field order kept) to ``path``, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- reading


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: '{path}'")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YamlLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file '{path}' is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{path}' must hold a mapping at the top level, got {type(data).__name__}"
        )
    return data


def _deep_copy_mappings(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _deep_copy_mappings(value) if isinstance(value, Mapping) else value
        for key, value in data.items()
    }


def _apply_override(cls: type, data: dict[str, Any], override: str) -> None:
    """Parse ``"a.b.c=value"`` and write the value into the nested ``data`` mapping."""
    if not isinstance(override, str) or "=" not in override:
        raise ConfigError(f"malformed override {override!r}: expected 'dotted.key=value'")
    key, _, text = override.partition("=")
    parts = key.strip().split(".")
    if any(not part for part in parts):
        raise ConfigError(f"malformed override {override!r}: the key has an empty part")
    check_key_path(cls, parts, f"override {override!r}: ")
    try:
        parsed = yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"override {override!r}: the value is not valid YAML: {error}") from error
    value = (
        parsed if isinstance(parsed, (str, dict, list)) else OverrideScalar(text.strip(), parsed)
    )

    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            dotted = ".".join(parts[: depth + 1])
            raise ConfigError(f"override {override!r}: '{dotted}' is {child!r}, not a mapping")
        node = child
    node[parts[-1]] = value
