"""The strict converter: plain data checked against a config dataclass's annotations, and back.

A config class is a (frozen) dataclass whose fields may be other dataclasses, ``bool``, ``int``,
``float``, ``str``, ``Path``, ``Literal[...]``, ``X | None``, unions, ``tuple[...]``, ``list[...]``
and ``dict[str, ...]``. :func:`build_dataclass` checks every value against its field's annotation
(no silent coercion beyond lists to tuples, ints to floats and strings to paths) and raises
:class:`ConfigError` naming the full dotted key, with close-match suggestions for unknown keys. A
key a class no longer has can be listed in its ``REMOVED_KEYS`` class attribute (name -> what
replaces it): setting it is an error saying so, and an off value (``null``, 0, ``false``: what
older saved configs hold) is ignored. :func:`to_plain` is the way back, to YAML-ready data.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

__all__ = ["ConfigError", "OverrideScalar", "build_dataclass", "check_key_path", "to_plain"]


class ConfigError(ValueError):
    """A config file, mapping or override does not fit the config dataclass."""


@dataclasses.dataclass(frozen=True)
class OverrideScalar:
    """An override value that YAML read as a non-string scalar, kept with its original text.

    ``name=yes`` parses to ``True``; when the field is a ``str`` the text ``"yes"`` is used.
    """

    text: str
    parsed: Any


_NO_VALUE = object()


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


def build_dataclass(cls: type, data: Any, prefix: str, base: Any) -> Any:
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


def check_key_path(cls: type, parts: Sequence[str], context: str) -> None:
    """Walk the annotations of ``cls`` along the dotted key ``parts``, so that a misspelt key
    fails before anything is merged; every error message starts with ``context``."""
    annotation: Any = cls
    for depth, part in enumerate(parts):
        parent = ".".join(parts[:depth])
        dataclass_type = _dataclass_in(annotation)
        if dataclass_type is not None:
            field_types = _field_types(dataclass_type)
            if part in _removed_keys(dataclass_type):
                raise ConfigError(context + _removed_key_message(dataclass_type, parent, part))
            if part not in field_types:
                raise ConfigError(context + _unknown_key_message(parent, part, field_types))
            annotation = field_types[part]
        elif annotation is Any:
            return
        elif _is_mapping_annotation(_strip_optional(annotation)):
            args = get_args(_strip_optional(annotation))
            annotation = args[1] if len(args) == 2 else Any
        else:
            raise ConfigError(
                f"{context}'{parent}' has type {_describe(annotation)}, it has no key '{part}'"
            )


def _convert(annotation: Any, value: Any, key: str, current: Any = _NO_VALUE) -> Any:
    """Check ``value`` against ``annotation`` and convert lists to tuples, ints to floats, etc."""
    if isinstance(value, OverrideScalar):
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
        return build_dataclass(annotation, value, key, base)
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


def to_plain(value: Any) -> Any:
    """``value`` (a config dataclass, mapping, sequence or scalar) as plain dicts, lists and
    scalars: tuples become lists and paths strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_plain(getattr(value, name)) for name in _field_types(type(value))}
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value
