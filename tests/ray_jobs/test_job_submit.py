"""`ray job submit` of a training job against a real `ray start --head` with token auth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nie_core.config import config_to_dict

from .conftest import tiny_enhancer

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_ray_job_submit_runs_enhancer_to_succeeded(ray_cluster, sample_data, tmp_path):
    cfg = tiny_enhancer(
        sample_data, tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}",
        "run.name=submitted", "run.epochs=1", "run.steps_per_epoch=2", "tracking.register=false",
    )  # fmt: skip
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config_to_dict(cfg)))
    env = {**os.environ, **ray_cluster.env, "RAY_ADDRESS": ray_cluster.dashboard_url}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    # The job's processes (driver and Ray Train workers) take their temporary files here.
    job_tmp = tmp_path / "job_tmp"
    job_tmp.mkdir()
    runtime_env = json.dumps({"env_vars": {"TMPDIR": str(job_tmp)}})
    cmd = [
        ray_bin, "job", "submit", "--working-dir", str(REPO_ROOT),
        "--runtime-env-json", runtime_env, "--",
        "python", "-m", "nie_cli", "train", "enhancer", "--config", str(recipe),
    ]  # fmt: skip
    # Right after `ray start` the head's job agent may still be coming up: retry that case only
    # (on a busy 2-core machine it took longer than 90 s).
    deadline = time.monotonic() + 240
    while True:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        if "No available agent" not in out or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert proc.returncode == 0, out[-4000:]
    assert "succeeded" in out.lower(), out[-4000:]
    assert (tmp_path / "runs" / "submitted" / "best" / "checkpoint.pt").is_file()
    # Issue 21 item 7: each epoch's validation grid folder is removed once logged, on every
    # rank (it used to leak one nie-grid-* folder per epoch per worker).
    assert sorted(p.name for p in job_tmp.glob("nie-grid-*")) == []


def test_ray_job_submit_without_token_is_refused(ray_cluster):
    """The head really has token authentication on: a client without the token is refused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["RAY_ADDRESS"] = ray_cluster.dashboard_url
    env["HOME"] = "/nonexistent"  # no ~/.ray/auth_token either
    ray_bin = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.run(
        [ray_bin, "job", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
