"""The fault-tolerance block: the node-loss and replica-loss figures of the committed fault-test
run (``docs/results/fault_tolerance.md``)."""

from __future__ import annotations

import json
import re

from .sources import Context, SourceError, read

FAULTS = "docs/results/fault_tolerance.md"


def render_faults(ctx: Context) -> str:
    """The node-loss and replica-loss figures of the committed fault-test run."""
    text = read(ctx.root, FAULTS)
    title = re.search(r"^\*\*(.+)\*\*$", text, re.M)
    raw = dict(re.findall(r"^\[(node loss|replica loss)\] (\{.*\})$", text, re.M))
    if not title or len(raw) != 2:
        raise SourceError(f"{FAULTS}: no bold date line or no [node loss]/[replica loss] JSON")
    node, replica = json.loads(raw["node loss"]), json.loads(raw["replica loss"])
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(replica["status_codes"].items()))
    only_503 = set(replica["status_codes"]) <= {"200", "503"}
    after = replica["failed_sent_after_kill"]
    return (
        f"Measured in the run recorded in {ctx.link(FAULTS)} ({title.group(1)}):\n\n"
        f"- node loss: the job resumed from step {node['resumed_from_step']} (checkpoints "
        f"registered at the kill: {node['registered_checkpoint_steps_at_kill']}) and finished "
        f"{node['kill_to_job_done_s']} s after the kill, in {node['mlflow_runs']} MLflow run(s), "
        f"status {node['mlflow_status']};\n"
        f"- replica loss: {replica['clients']} clients sent {replica['requests_sent']} requests "
        f"in {replica['load_s']:g} s; {replica['requests_failed']} failed "
        f"(status codes {codes}; {'every failure a 503' if only_503 else 'not only 503s'}), "
        f"{replica['failed_in_flight_at_kill']} of them in flight at the kill, "
        f"{'none' if after == 0 else after} sent after it; the replacement replica was running "
        f"{replica['replica_back_after_kill_s']} s after the kill."
    )
