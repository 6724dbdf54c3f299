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

The modules: :mod:`~nie_core.config.loading` (files, mappings and overrides in, YAML out) and
:mod:`~nie_core.config.convert` (the strict converter between plain data and dataclasses).
"""

from nie_core.config.convert import ConfigError
from nie_core.config.loading import config_from_dict, config_to_dict, load_config, save_config

__all__ = ["ConfigError", "config_from_dict", "config_to_dict", "load_config", "save_config"]
