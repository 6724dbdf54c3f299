"""A throwaway multi-node Ray cluster on this machine, for the fault tests.

Every node is ``ray start ... --block`` in a process group of its own (loopback only, token
authentication as the session's head), so a test can SIGKILL one node's whole group (its
raylet and every worker on it) as a machine that dies would, and end all of them at the end
by process group. ``ray stop`` is never called: it would end every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import proc_stats

# The GCS declares a node dead after this many failed health checks, one per period (Ray's
# defaults, 5 x 3 s, would add ~15 s to every node-loss test on this 2-core machine).
FAST_NODE_DEATH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


@dataclass
class Node:
    """One ``ray start --block`` process (the leader of its own process group)."""

    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session=True: the group is led by this pid

    def kill(self) -> None:
        """SIGKILL the node's whole process group (raylet, agents, workers): a lost machine."""
        self._signal(signal.SIGKILL)
        self._wait(timeout_s=30)

    def stop(self) -> None:
        """End the node's process group: SIGTERM, then SIGKILL what is left."""
        if self._signal(signal.SIGTERM):
            self._wait(timeout_s=20)
            self._signal(signal.SIGKILL)  # workers that outlived their raylet

    def _signal(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to the node's process group; False if the group is gone."""
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            return False
        return True

    def _wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the ``ray start`` process to exit."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout_s)

    def group_members(self) -> list[int]:
        """Pids of the processes still in the node's group (zombies not yet reaped excluded)."""
        return [pid for pid, state, _, group in proc_stats() if group == self.pgid and state != "Z"]

    def wait_gone(self, timeout_s: float = 15.0) -> list[int]:
        """Wait until no process of the group runs; returns those still running at the end."""
        deadline = time.monotonic() + timeout_s
        while (members := self.group_members()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return members


@dataclass
class LocalCluster:
    """A head and worker nodes on 127.0.0.1, ended as process groups by :meth:`shutdown`."""

    root: Path
    env: dict[str, str]
    gcs_address: str = ""
    dashboard_url: str = ""
    nodes: list[Node] = field(default_factory=list)

    def _start(self, name: str, args: list[str], timeout_s: float) -> Node:
        ray_bin = Path(sys.executable).with_name("ray")
        # Short temp dirs: Ray's socket paths must stay under the 107-byte AF_UNIX limit.
        temp_dir = Path("/tmp") / f"nie-{os.getpid()}-{name}"
        cmd = [str(ray_bin), "start", "--block", "--node-ip-address=127.0.0.1",
               f"--temp-dir={temp_dir}", "--disable-usage-stats", *args]  # fmt: skip
        # As on a cluster node whose environment is activated: `python` is this venv's.
        env = {**os.environ, **self.env,
               "PATH": f"{ray_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=env)  # fmt: skip
        node = Node(name, proc, log)
        self.nodes.append(node)
        return node

    def start_head(self, num_cpus: int, timeout_s: float = 90) -> Node:
        gcs_port, dash_port = free_port(), free_port()
        node = self._start(
            "head",
            ["--head", f"--num-cpus={num_cpus}", f"--port={gcs_port}",
             "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}"],
            timeout_s,
        )  # fmt: skip
        wait_for_port(gcs_port, timeout_s, node)
        self.gcs_address = f"127.0.0.1:{gcs_port}"
        self.dashboard_url = f"http://127.0.0.1:{dash_port}"
        return node

    def add_node(self, name: str, num_cpus: int, timeout_s: float = 90) -> Node:
        """A worker node joined to the head; returns once the GCS lists it alive."""
        before = len(self.alive_nodes())
        node = self._start(name, [f"--address={self.gcs_address}", f"--num-cpus={num_cpus}"],
                           timeout_s)  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while len(self.alive_nodes()) <= before:
            if node.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node {name} did not join:\n{node.log.read_text()[-3000:]}")
            time.sleep(0.5)
        return node

    def alive(self, kind: str) -> list[dict]:
        """The ``kind`` ("nodes", "actors") the GCS lists as ALIVE, from the dashboard's state
        API (token in the header); [] while the dashboard is still starting."""
        import httpx

        try:
            r = httpx.get(
                f"{self.dashboard_url}/api/v0/{kind}",
                params={"limit": 1000, "filter_keys": "state", "filter_predicates": "=",
                        "filter_values": "ALIVE"},
                headers={"authorization": f"Bearer {self.env['RAY_AUTH_TOKEN']}"},
                timeout=10,
            )  # fmt: skip
            r.raise_for_status()
        except httpx.HTTPError:
            return []
        return r.json()["data"]["result"]["result"]

    def alive_nodes(self) -> list[dict]:
        """The nodes the GCS lists as alive."""
        return self.alive("nodes")

    def shutdown(self) -> None:
        """End every node's process group, workers first, the head last."""
        for node in reversed(self.nodes):
            node.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float, node: Node) -> None:
    """Block until the node's ``port`` accepts connections (fails if ``ray start`` exits)."""
    from tests.conftest import wait_for_port as wait

    wait(port, timeout_s, node.proc, node.log, what=node.name)
