"""A node dies in the middle of training: the job resumes from its last checkpoint on the
nodes that remain and finishes, in the same MLflow run.

A cluster of its own (not the session's shared head: the test kills a node, and the GCS must
notice a dead node in seconds, which takes settings on the head): a head with 2 CPUs and a
second node with 1 CPU, each ``ray start --block`` in its own process group on 127.0.0.1
with token authentication. The enhancer job (``nie train enhancer``'s handler, with fault
injection: ``tests/ray_jobs/train_with_faults.py``) runs 2 DDP workers of 1 CPU with placement
SPREAD, so one worker lands on each node. Both workers pause in the middle of epoch 2
(``Faults(pause_at_step=...)``: each writes a marker file and waits); once both have paused and
Ray Train has registered epoch 1's checkpoint, the second node's whole process group is
SIGKILLed. The kill is placed by what the job has done, not by the clock: the job is in epoch 2,
past checkpoint 1 and before checkpoint 2, however fast or loaded the machine. Ray Train's
FailureConfig restarts the worker group, which now fits on the head's 2 CPUs, from that
checkpoint; the restarted workers pass the step without pausing (the markers say they have
paused). The figures are printed and written to ``node_loss.json`` in the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nie_core.config import config_to_dict
from ray_jobs.fault_injection import PAUSE_FILE

from .cluster_helpers import FAST_NODE_DEATH, LocalCluster
from .conftest import tiny_enhancer

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = 100  # per epoch
EPOCHS = 2
WORKERS = 2
# Where the workers wait for the kill: the middle of epoch 2. Epoch 1's checkpoint has been
# reported (rank 0 reports it before epoch 2 starts) and epoch 2's cannot have been.
PAUSE_AT_STEP = STEPS + STEPS // 2
# The Train controller collects the workers' reports (and registers their checkpoints) when
# it polls them; every 0.5 s instead of 2 s, so epoch 1's checkpoint is registered within a
# second of the pause.
POLL = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}
JOB_TIMEOUT_S = 300  # generous: the machine is shared, and a loaded one is several times slower


def _registered_steps(run_folder: Path) -> list[int]:
    """Global steps of the checkpoints Ray Train has registered for the run (its controller's
    snapshot), which are those a restart can resume from. A checkpoint folder alone is not
    enough: the controller registers a report on its next poll of the workers."""
    snapshot = run_folder / "checkpoint_manager_snapshot.json"
    try:
        results = json.loads(snapshot.read_text())["checkpoint_results"]
    except (OSError, ValueError, KeyError):
        return []
    return sorted(int(r["metrics"]["global_step"]) for r in results)


def test_node_killed_mid_epoch_job_resumes_from_checkpoint_on_remaining_node(sample_data, tmp_path):
    from mlflow.tracking import MlflowClient

    t_start = time.monotonic()
    token = secrets.token_hex(32)  # this cluster's own token
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    cluster = LocalCluster(tmp_path, {**auth, **FAST_NODE_DEATH, "RAY_USAGE_STATS_ENABLED": "0"})
    driver: subprocess.Popen | None = None
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_folder = tmp_path / "runs" / "nodeloss"
    try:
        cluster.start_head(num_cpus=2)
        second = cluster.add_node("node2", num_cpus=1)
        t_cluster = time.monotonic() - t_start

        cfg = tiny_enhancer(
            sample_data, tmp_path, uri, "run.name=nodeloss", f"run.epochs={EPOCHS}",
            f"run.steps_per_epoch={STEPS}", "data.repeat=104", "run.max_failures=2",
            f"scaling.num_workers={WORKERS}", "scaling.cpus_per_worker=1",
            "scaling.placement_strategy=SPREAD", "tracking.register=false", "run.fast=off",
        )  # fmt: skip
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(yaml.safe_dump(config_to_dict(cfg)))
        faults = json.dumps({"pause_at_step": PAUSE_AT_STEP})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
        env.update(auth, **POLL, RAY_ADDRESS=cluster.gcs_address, RAY_TRAIN_V2_ENABLED="1")
        t_job = time.monotonic()
        with open(tmp_path / "driver.log", "wb") as log:
            driver = subprocess.Popen(
                [sys.executable, "-m", "tests.ray_jobs.train_with_faults", str(recipe), faults],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

        deadline = time.monotonic() + JOB_TIMEOUT_S

        def wait_for(done, what: str) -> None:
            while not done():
                assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-4000:]
                assert time.monotonic() < deadline, f"{what} in time"
                time.sleep(0.1)

        # Every worker has paused in the middle of epoch 2 ...
        markers = [run_folder / PAUSE_FILE.format(rank=r) for r in range(WORKERS)]
        wait_for(lambda: all(m.exists() for m in markers), "the workers did not pause")
        t_paused = time.monotonic()
        # ... and Ray Train has registered epoch 1's checkpoint (its controller polls the paused
        # workers; epoch 2's cannot exist: no worker has passed step PAUSE_AT_STEP).
        wait_for(lambda: _registered_steps(run_folder), "no checkpoint was registered")
        t_first_ckpt = time.monotonic()
        # The workers wait where they are until they are killed: what the state API and the
        # run folder say now is what they are when the node dies.
        paused_at = [int(m.read_text()) for m in markers]
        placement = _worker_nodes(cluster)
        registered_at_kill = _registered_steps(run_folder)
        # Rank 0 writes an epoch's checkpoint folder when the epoch ends: none beyond the
        # registered ones means the node dies inside the epoch that follows them.
        folders_at_kill = sum(p.is_dir() for p in run_folder.glob("checkpoint_*"))
        killed = second.group_members()
        second.kill()
        t_kill = time.monotonic()
        left = second.wait_gone()
        assert left == [], f"processes of the killed node still run: {left}"

        try:
            rc = driver.wait(timeout=max(10.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail("the job did not finish after the node loss:\n"
                        + (tmp_path / "driver.log").read_text()[-4000:])  # fmt: skip
        t_done = time.monotonic()
        out = (tmp_path / "driver.log").read_text()
        assert rc == 0, out[-4000:]
    finally:
        if driver is not None and driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=30)
        cluster.shutdown()

    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("nie-enhancer").experiment_id], max_results=10
    )
    assert len(runs) == 1, [r.info.run_id for r in runs]  # one run, not one per attempt
    run = runs[0]
    resumed = [int(m.value) for m in client.get_metric_history(run.info.run_id,
                                                               "resumed_from_step")]  # fmt: skip
    steps = [int(m.value) for m in client.get_metric_history(run.info.run_id, "global_step")]
    figures = {
        "nodes": {"head_cpus": 2, "node2_cpus": 1},
        "workers": WORKERS,
        "worker_nodes_before_kill": placement,
        "steps_per_epoch": STEPS,
        "epochs": EPOCHS,
        "workers_paused_at_step": paused_at,
        "registered_checkpoint_steps_at_kill": registered_at_kill,
        "checkpoint_folders_at_kill": folders_at_kill,
        "killed_after_first_checkpoint_s": round(t_kill - t_first_ckpt, 2),
        "resumed_from_step": int(run.data.tags.get("nie.resumed_from_step", -1)),
        "resumed_from_step_history": resumed,
        "global_step_history": steps,
        "mlflow_runs": len(runs),
        "mlflow_status": run.info.status,
        "cluster_start_s": round(t_cluster, 1),
        "node2_processes_killed": len(killed),
        "job_to_pause_s": round(t_paused - t_job, 1),
        "job_to_first_checkpoint_s": round(t_first_ckpt - t_job, 1),
        "kill_to_job_done_s": round(t_done - t_kill, 1),
        "job_total_s": round(t_done - t_job, 1),
        "test_total_s": round(time.monotonic() - t_start, 1),
    }
    (tmp_path / "node_loss.json").write_text(json.dumps(figures, indent=2))
    print(f"\n[node loss] {json.dumps(figures)}")
    print(f"[node loss] figures written to {tmp_path / 'node_loss.json'}")

    # The workers really spanned both nodes before the kill, and waited in epoch 2 for it.
    assert len(placement) == WORKERS and len(set(placement.values())) == 2, placement
    assert paused_at == [PAUSE_AT_STEP] * WORKERS
    assert registered_at_kill == [STEPS], registered_at_kill
    # The node died inside an epoch, after a registered checkpoint, and the job resumed from
    # that checkpoint, not from step 0.
    assert folders_at_kill == len(registered_at_kill), "the kill came after an epoch's end"
    last = registered_at_kill[-1]
    assert figures["resumed_from_step"] == last > 0
    # The kill came in the epoch after that checkpoint: the first attempt logged no later
    # epoch, and the resumed attempt trained from there to the end, each epoch once.
    first_attempt = [s for s, r in zip(steps, resumed, strict=True) if r == 0]
    assert first_attempt[-1] == last, (steps, resumed)
    assert steps == [STEPS * (e + 1) for e in range(EPOCHS)], steps
    assert resumed == [0] * (last // STEPS) + [last] * (EPOCHS - last // STEPS), resumed
    assert run.info.status == "FINISHED"
    assert (tmp_path / "runs" / "nodeloss" / "best" / "checkpoint.pt").is_file()


def _worker_nodes(cluster: LocalCluster) -> dict[str, str]:
    """{Train worker actor id: node id} of the alive Train workers, from the state API."""
    actors = cluster.alive("actors")
    return {a["actor_id"]: a["node_id"] for a in actors if "RayTrainWorker" in a["class_name"]}
