"""Session-wide fixtures: one real local Ray cluster, the sample datasets, MLflow stores.

The Ray head is started with ``ray start --head --block`` in its own process group, with token
authentication on (as Ray 2.60 clusters run in production), and the whole group is ended at the
end of the session. ``ray stop`` is never called: it would end every Ray process on the machine.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Token authentication for the session's Ray head. Set before anything imports ray: Ray reads
# the token once per process.
RAY_CLIENT_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
os.environ.update(RAY_CLIENT_ENV)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class RayCluster:
    gcs_address: str  # host:port for ray.init(address=...)
    dashboard_url: str  # http://127.0.0.1:PORT for `ray job submit` / the Jobs SDK
    env: dict[str, str]  # environment a client needs (token auth)


def wait_for_port(
    port: int, timeout_s: float, proc: subprocess.Popen, log: Path, what: str = "Ray head"
) -> None:
    """Block until 127.0.0.1:``port`` accepts connections; fail with ``log``'s tail if ``proc``
    (a ``ray start``) exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited early:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not open port {port} within {timeout_s} s")


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real Ray head on this machine (2 CPUs, token auth), shared by the whole session."""
    import ray

    tmp = tmp_path_factory.mktemp("ray")
    gcs_port, dash_port = free_port(), free_port()
    client_env = dict(RAY_CLIENT_ENV)
    log = tmp / "head.log"
    # A short temp dir: Ray's socket paths must stay under the 107-byte AF_UNIX limit.
    temp_dir = Path("/tmp") / f"nie-ray-{os.getpid()}"
    ray_bin = Path(sys.executable).with_name("ray")
    cmd = [
        str(ray_bin), "start", "--head", "--block", "--num-cpus=2", f"--port={gcs_port}",
        "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash_port}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]  # fmt: skip
    # As on a cluster node whose environment is activated: `python` in a job is this venv's.
    head_env = {**os.environ, "PATH": f"{ray_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=head_env
        )
    try:
        wait_for_port(gcs_port, 90, proc, log)
        wait_for_port(dash_port, 90, proc, log)
        gcs = f"127.0.0.1:{gcs_port}"
        ray.init(address=gcs, log_to_driver=False)
        yield RayCluster(gcs, f"http://127.0.0.1:{dash_port}", client_env)
    finally:
        try:
            ray.shutdown()
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)  # it seldom ends within 30 s; nothing to save at the end
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The bundled sample datasets (DIV2K and AVA layouts), built once per session."""
    from nie_core.data.sample import build_sample_data

    return build_sample_data(tmp_path_factory.mktemp("sample"))


@pytest.fixture
def mlflow_uri(tmp_path: Path) -> str:
    """A fresh local MLflow store (SQLite) for one test."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


# Tiny models (EDSR/MDSR baselines with 2 blocks of 16 features, NIMA on MnasNet 0.5 with random
# weights): what the loading, service and CLI tests serve.
TINY = {"n_resblocks": 2, "n_feats": 16}


def save_tiny(path: Path, name: str, seed: int, task: str = "sr", **kwargs: object) -> Path:
    """Save a randomly initialised ``name`` model (seeded) as a checkpoint at ``path``.

    A NIMA head gets 1e8 times larger weights: the randomly initialised backbone's pooled
    features are about 1e-8, so a fresh head would rate every image 5.507 and no output could
    "win"; scaled up, the random scores differ between images."""
    import torch

    from nie_core.checkpoint import save_checkpoint
    from nie_core.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    if name == "nima":
        with torch.no_grad():
            model.head[-1].weight.mul_(1e8)
    state = {
        "model_name": name,
        "model_kwargs": dict(kwargs),
        "model": model.state_dict(),
        "config": {"data": {"task": task}},
    }
    return save_checkpoint(path, state)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints: two EDSR x2 (baseline, hybrid), a spare EDSR x2 (for swapping), an MDSR
    x2/x3, a same-size deblurring EDSR and a NIMA scorer."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "baseline": save_tiny(root / "baseline.pt", "edsr_baseline", 0, scale=2, **TINY),
        "hybrid": save_tiny(root / "hybrid.pt", "edsr_baseline", 1, scale=2, **TINY),
        "spare": save_tiny(root / "spare.pt", "edsr_baseline", 2, scale=2, **TINY),
        "mdsr": save_tiny(root / "mdsr.pt", "mdsr_baseline", 3, scales=(2, 3), **TINY),
        "deblur": save_tiny(root / "deblur.pt", "edsr_baseline", 4, "deblur", scale=1, **TINY),
        "nima": save_tiny(root / "nima.pt", "nima", 5, backbone="mnasnet0_5"),
    }
