"""Typed configuration: frozen dataclasses filled from YAML files and dotted overrides.

A config class is a (frozen) dataclass whose fields may be other dataclasses, ``bool``, ``int``,
``float``, ``str``, ``Path``, ``Literal[...]``, ``X | None``, unions, ``tuple[...]``, ``list[...]``
and ``dict[str, ...]``. A YAML file mirrors the dataclass: one mapping level per nested
dataclass. Overrides are ``"dotted.key=value"`` strings whose value is read as YAML, so
``train.lr=1e-3``, ``model.scales=[2,3]`` and ``run_name=null`` all work. Every value is checked
against the field's annotation, and every mistake raises :class:`ConfigError` naming the full
dotted key. A key a class no longer has can be listed in its ``REMOVED_KEYS`` class attribute
(name -> what replaces it): setting it is an error saying so, and an off value (``null``, 0,
``false``: what older saved configs hold) is ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

__all__ = ["ConfigError", "config_from_dict", "config_to_dict", "load_config", "save_config"]

ConfigT = TypeVar("ConfigT")


class ConfigError(ValueError):
    """A config file, mapping or override does not fit the config dataclass."""


class _YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` (no dot) as a float, as YAML 1.2 does."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


@dataclasses.dataclass(frozen=True)
class _OverrideScalar:
    """An override value that YAML read as a non-string scalar, kept with its original text.

    ``name=yes`` parses to ``True``; when the field is a ``str`` the text ``"yes"`` is used.
    """

    text: str
    parsed: Any


_NO_VALUE = object()


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
    return _build_dataclass(cls, merged, prefix="", base=None)


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
    return _to_plain(cfg)


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
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
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
    _check_override_key(cls, parts, override)
    try:
        parsed = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"override {override!r}: the value is not valid YAML: {error}") from error
    value = (
        parsed if isinstance(parsed, (str, dict, list)) else _OverrideScalar(text.strip(), parsed)
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


def _check_override_key(cls: type, parts: list[str], override: str) -> None:
    """Walk the annotations along ``parts`` so that a misspelt override fails before merging."""
    annotation: Any = cls
    for depth, part in enumerate(parts):
        parent = ".".join(parts[:depth])
        dataclass_type = _dataclass_in(annotation)
        if dataclass_type is not None:
            field_types = _field_types(dataclass_type)
            if part in _removed_keys(dataclass_type):
                raise ConfigError(f"override {override!r}: " + _removed_key_message(
                    dataclass_type, parent, part))  # fmt: skip
            if part not in field_types:
                raise ConfigError(
                    f"override {override!r}: " + _unknown_key_message(parent, part, field_types)
                )
            annotation = field_types[part]
        elif annotation is Any:
            return
        elif _is_mapping_annotation(_strip_optional(annotation)):
            args = get_args(_strip_optional(annotation))
            annotation = args[1] if len(args) == 2 else Any
        else:
            raise ConfigError(
                f"override {override!r}: '{parent}' has type {_describe(annotation)}, "
                f"it has no key '{part}'"
            )


# --------------------------------------------------------------------------- building


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of the ``init`` fields of dataclass ``cls``, in field order."""
    hints = get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls) if field.init}


def _strip_optional(annotation: Any) -> Any:
    """``X`` for ``X | None``; any other annotation unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass that ``annotation`` (or ``annotation | None``) names, if any."""
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return annotation
    return None


def _is_mapping_annotation(annotation: Any) -> bool:
    return annotation is dict or get_origin(annotation) in (dict, Mapping)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _unknown_key_message(prefix: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    message = f"unknown config key '{_join(prefix, name)}'"
    matches = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if matches:
        suggestions = " or ".join(f"'{_join(prefix, match)}'" for match in matches)
        message += f"; did you mean {suggestions}?"
    where = f"'{prefix}'" if prefix else "the top level"
    return message + f" (keys at {where}: {', '.join(known)})"


def _removed_keys(cls: type) -> Mapping[str, str]:
    """Keys that config class ``cls`` no longer has, with what replaces them: a class may list
    them as ``REMOVED_KEYS = {"name": "what to use instead"}`` (not a field)."""
    return getattr(cls, "REMOVED_KEYS", {})


def _removed_key_message(cls: type, prefix: str, name: str) -> str:
    return f"config key '{_join(prefix, name)}' was removed: {_removed_keys(cls)[name]}"


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return _NO_VALUE


def _build_dataclass(cls: type, data: Any, prefix: str, base: Any) -> Any:
    """Instantiate dataclass ``cls`` from mapping ``data``; unset fields come from ``base``
    (an instance of ``cls``) or else from the field defaults."""
    if not isinstance(data, Mapping):
        raise _type_error(prefix or "<root>", cls, data)
    field_types = _field_types(cls)
    removed = _removed_keys(cls)
    for name in data:
        if name in removed:
            if not data[name]:  # off (null, 0, false), as older versions saved it: harmless
                continue
            raise ConfigError(_removed_key_message(cls, prefix, str(name)))
        if name not in field_types:
            raise ConfigError(_unknown_key_message(prefix, str(name), field_types))

    fields = {field.name: field for field in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, annotation in field_types.items():
        dotted = _join(prefix, name)
        current = getattr(base, name) if base is not None else _field_default(fields[name])
        if name in data:
            kwargs[name] = _convert(annotation, data[name], dotted, current)
        elif current is _NO_VALUE:
            raise ConfigError(f"missing required config key '{dotted}'")
        elif base is not None:
            kwargs[name] = current
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{prefix or cls.__name__}: {error}") from error


def _convert(annotation: Any, value: Any, key: str, current: Any = _NO_VALUE) -> Any:
    """Check ``value`` against ``annotation`` and convert lists to tuples, ints to floats, etc."""
    if isinstance(value, _OverrideScalar):
        try:
            return _convert(annotation, value.parsed, key, current)
        except ConfigError as parsed_error:
            try:
                return _convert(annotation, value.text, key, current)
            except ConfigError:
                raise parsed_error from None

    if annotation is Any:
        return value
    if annotation is None or annotation is type(None):
        if value is None:
            return None
        raise _type_error(key, type(None), value)

    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return _convert_union(annotation, value, key, current)
    if origin is Literal:
        for option in args:
            if value == option and type(value) is type(option):
                return option
        raise _type_error(key, annotation, value)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        base = current if isinstance(current, annotation) else None
        return _build_dataclass(annotation, value, key, base)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(key, bool, value)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(key, int, value)
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _type_error(key, float, value)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _type_error(key, str, value)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        if isinstance(value, str | os.PathLike):
            return annotation(value)
        raise _type_error(key, annotation, value)
    if origin is tuple or annotation is tuple:
        return _convert_tuple(annotation, value, key)
    if origin is list or annotation is list:
        if not isinstance(value, list | tuple):
            raise _type_error(key, annotation, value)
        item_type = args[0] if args else Any
        return [_convert(item_type, item, f"{key}[{i}]") for i, item in enumerate(value)]
    if _is_mapping_annotation(annotation):
        if not isinstance(value, Mapping):
            raise _type_error(key, annotation, value)
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        return {
            _convert(key_type, item_key, f"{key} (key {item_key!r})"): _convert(
                value_type, item, f"{key}.{item_key}"
            )
            for item_key, item in value.items()
        }
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _type_error(key, annotation, value)
    raise ConfigError(f"config key '{key}' has an unsupported annotation {annotation!r}")


def _convert_union(annotation: Any, value: Any, key: str, current: Any) -> Any:
    members = get_args(annotation)
    if value is None and type(None) in members:
        return None
    candidates = [member for member in members if member is not type(None)]
    if len(candidates) == 1:  # X | None: let X's own error (e.g. a nested unknown key) through
        return _convert(candidates[0], value, key, current)
    for member in candidates:
        try:
            return _convert(member, value, key, current)
        except ConfigError:
            continue
    raise _type_error(key, annotation, value)


def _convert_tuple(annotation: Any, value: Any, key: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise _type_error(key, annotation, value)
    args = get_args(annotation)
    if not args:
        return tuple(value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(
            f"config key '{key}': expected {_describe(annotation)} with {len(args)} items, "
            f"got {len(value)} items {list(value)!r}"
        )
    return tuple(
        _convert(item_type, item, f"{key}[{i}]")
        for i, (item_type, item) in enumerate(zip(args, value, strict=True))
    )


def _describe(annotation: Any) -> str:
    if annotation is type(None) or annotation is None:
        return "None"
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(option) for option in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(member) for member in get_args(annotation))
    if origin is not None:
        return repr(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", repr(annotation))


def _type_error(key: str, annotation: Any, value: Any) -> ConfigError:
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        expected = f"a mapping of {annotation.__name__} fields"
    else:
        expected = _describe(annotation)
    return ConfigError(
        f"config key '{key}': expected {expected}, got {type(value).__name__} {value!r}"
    )


# --------------------------------------------------------------------------- writing


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _to_plain(getattr(value, name)) for name in _field_types(type(value))}
    if isinstance(value, Mapping):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value
