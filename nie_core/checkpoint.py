"""Checkpoints: atomic saving, safe loading and rebuilding models from them.

A checkpoint is a dict saved with ``torch.save`` holding ``model_name`` and ``model_kwargs`` (the
arguments of ``nie_core.models.create_model``), ``model`` (the state dict) and optionally
``optimizer``, ``scheduler``, ``epoch``, ``global_step`` and ``config``. Files are replaced
atomically, so a crash while saving leaves the previous checkpoint intact, and they are read with
``torch.load(..., weights_only=True)``, which never runs code from the file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch
import yaml
from torch import nn

from nie_core.config import config_to_dict

__all__ = [
    "CHECKPOINT_FILENAME",
    "CONFIG_FILENAME",
    "load_checkpoint",
    "load_model",
    "resolve_checkpoint_path",
    "save_checkpoint",
    "write_resolved_config",
]

CHECKPOINT_FILENAME = "checkpoint.pt"
CONFIG_FILENAME = "config.yaml"
REQUIRED_KEYS = ("model_name", "model_kwargs", "model")

# Prefixes added by DistributedDataParallel and torch.compile wrappers.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Save ``state`` to ``path`` atomically and return the path.

    The file is written under a temporary name in the same folder, flushed and fsynced, then
    moved over ``path`` with ``os.replace``: readers see either the old or the new checkpoint,
    never a partial one. ``state`` must hold ``model_name``, ``model_kwargs`` and ``model``.
    Before the rename the temporary file is read back with ``torch.load(weights_only=True,
    mmap=True)`` (tensor data is mapped, not copied): a state holding objects that safe loading
    refuses (NumPy scalars, paths, custom classes) raises ``ValueError`` and ``path`` is left
    as it was.
    """
    path = Path(path)
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise ValueError(f"checkpoint state for '{path}' lacks required keys {missing}")
    if not isinstance(state["model_name"], str):
        raise ValueError(f"state['model_name'] must be a str, got {state['model_name']!r}")
    if not isinstance(state["model_kwargs"], Mapping):
        raise ValueError(f"state['model_kwargs'] must be a dict, got {state['model_kwargs']!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(
        path, lambda file: torch.save(dict(state), file), verify=_check_weights_only_loadable
    )
    return path


def resolve_checkpoint_path(path_or_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint file itself, or ``checkpoint.pt`` inside a directory; ``ValueError`` if
    there is no such file."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / CHECKPOINT_FILENAME
    if not path.is_file():
        raise ValueError(f"checkpoint not found: '{path}'")
    return path


def load_checkpoint(
    path_or_dir: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint dict with ``torch.load(weights_only=True)``.

    ``path_or_dir`` is a file or a run directory holding ``checkpoint.pt``. Raises
    ``ValueError`` naming the path when it is missing, unreadable or not a checkpoint dict.
    """
    path = resolve_checkpoint_path(path_or_dir)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch.load raises many types (KeyError, EOFError, ...) on junk
        raise ValueError(f"'{path}' is not a readable checkpoint: {error}") from error
    if not isinstance(state, dict):
        raise ValueError(f"'{path}' holds a {type(state).__name__}, not a checkpoint dict")
    return state


def load_model(
    path_or_dir: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild the model saved in a checkpoint, in eval mode.

    Calls ``nie_core.models.create_model(state["model_name"], **state["model_kwargs"])`` (minus
    any ``weights`` argument: the checkpoint's own weights replace it) and loads
    ``state["model"]`` strictly. DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) key
    prefixes are removed.
    """
    # Imported here: nie_core.models may itself use this module to read weight files.
    from nie_core.models import create_model

    path = resolve_checkpoint_path(path_or_dir)
    state = load_checkpoint(path, map_location=map_location)
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise ValueError(f"checkpoint '{path}' lacks {missing}, cannot rebuild its model")
    model_name = state["model_name"]
    model_kwargs = {key: value for key, value in state["model_kwargs"].items() if key != "weights"}
    # A model-zoo file may hold only the tensors trained on top of named base weights.
    base_weights = state.get("base_weights")
    extra = {} if base_weights is None else {"weights": base_weights}
    model = create_model(model_name, **model_kwargs, **extra)
    tensors = _strip_wrapper_prefixes(state["model"])
    if base_weights is not None:
        from nie_core.models.zoo import load_partial_state_dict

        load_partial_state_dict(model, tensors, partial=True)  # ValueError naming the keys
        return model.to(map_location).eval()
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise ValueError(
            f"weights in '{path}' do not fit {model_name}(**{model_kwargs!r}): {error}"
        ) from error
    return model.to(map_location).eval()


def write_resolved_config(
    directory: str | os.PathLike[str], config: Mapping[str, Any] | Any
) -> Path:
    """Write ``config`` (a mapping or a config dataclass) as ``config.yaml`` in ``directory``.

    Meant to sit beside ``checkpoint.pt`` so a run records the exact settings it used. Written
    atomically; returns the file path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=False)
    path = directory / CONFIG_FILENAME
    _write_atomically(path, lambda file: file.write(text.encode("utf-8")))
    return path


def _write_atomically(
    path: Path,
    write: Callable[[BinaryIO], object],
    verify: Callable[[Path, Path], None] | None = None,
) -> None:
    """Run ``write`` on a fresh temporary file beside ``path``, fsync it, optionally
    ``verify(temp_path, path)``, then rename it over ``path``. On any failure the temporary
    file is removed and ``path`` is left untouched."""
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp_path, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if verify is not None:
            verify(temp_path, path)
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Persist a rename on POSIX file systems; a no-op where directories cannot be opened."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_weights_only_loadable(temp_path: Path, path: Path) -> None:
    """Raise ``ValueError`` if the file just written cannot be read with ``weights_only``."""
    try:
        torch.load(temp_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        # torch's message is long and advises weights_only=False; keep the line naming the type.
        lines = str(error).splitlines()
        reason = next((line.strip() for line in lines if "Unsupported global" in line), lines[0])
        raise ValueError(
            f"checkpoint state for '{path}' holds values that torch.load(weights_only=True) "
            f"refuses; store tensors or plain Python values instead ({reason})"
        ) from error


def _strip_wrapper_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    weights = dict(state_dict)
    for prefix in _WRAPPER_PREFIXES:
        if weights and all(key.startswith(prefix) for key in weights):
            weights = {key[len(prefix) :]: value for key, value in weights.items()}
    return weights
