"""What the demo tells its user to open and type next: the Ray dashboard (and how to sign in),
MLflow's UI, and commands whose paths exist after this demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nie_cli.demo.pipeline import DemoResult


def ray_dashboard_url() -> str | None:
    """The dashboard URL of the Ray cluster this process is connected to (None without one)."""
    import ray

    if not ray.is_initialized():
        return None
    # Ray keeps the connected node's dashboard address here; it has no public accessor once
    # ray.init() has returned.
    from ray._private import worker

    node = getattr(worker, "_global_node", None)
    url = getattr(node, "webui_url", None)
    if not url:
        return None
    return url if "://" in url else f"http://{url}"


def dashboard_sign_in() -> str | None:
    """How to open the dashboard of a cluster with token authentication (Ray 2.60 turns it on
    for a new local cluster): the page asks for the token that ``ray get-auth-token`` prints.
    None when authentication is off."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return None
    return f"it asks for a token: paste what `{_program('ray')} get-auth-token` prints"


def _program(name: str) -> str:
    """``name`` as the user can type it: the virtualenv's copy, relative when under the cwd."""
    path = Path(sys.executable).with_name(name)
    return relative_to_cwd(path) if path.exists() else name


def mlflow_ui_command(uri: str) -> str:
    return f"{_program('mlflow')} ui --backend-store-uri {uri} --port 5000"


def next_commands(demo: DemoResult, served: bool) -> list[str]:
    """Commands to try after the demo, with paths and names that exist now (and that point
    at this demo's models and MLflow store from the current directory)."""
    nie = _program("nie")
    layout = demo.layout
    lines = []
    lr_dir = layout.train_root / "DIV2K_valid_LR_bicubic" / "X2"
    inputs = sorted(lr_dir.glob("*.png"))
    hybrid = demo.stages["hybrid"].result.get("checkpoint_dir")
    if inputs and hybrid:
        image, model = relative_to_cwd(inputs[0]), relative_to_cwd(Path(hybrid))
        lines.append(f"{nie} enhance {image} --model {model} --out enhanced/")
        lines.append(f"{nie} score {image}   (the zoo's NIMA)")
    lines.append(f"{nie} eval --data {relative_to_cwd(layout.unseen_root)}")
    if not served:
        here = layout.workdir == Path.cwd().resolve()
        store = "" if here else f" mlflow_tracking_uri={layout.tracking_uri}"
        lines.append(f"{nie} serve{store}   (the web page with the models just trained)")
    lines.append(f"{nie} report --out {relative_to_cwd(layout.report)}")
    return lines


def relative_to_cwd(path: Path) -> str:
    """``path`` relative to the current directory when it is under it, else as given."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
