"""cluster.yaml passes the checks `ray up` runs before it contacts the cloud."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"


def _load() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text(encoding="utf-8"))


def _prepare_and_validate(config: dict) -> dict:
    """What `ray up` does before the provider's bootstrap: merge the provider's defaults, then
    validate against Ray's JSON schema (ray.autoscaler._private.util)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_ray_validation() -> None:
    prepared = _prepare_and_validate(_load())
    node_types = prepared["available_node_types"]
    assert prepared["head_node_type"] in node_types
    gpu_types = [t for t in node_types.values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu_types, "no GPU worker type"
    for node_type in gpu_types:
        assert node_type["node_config"]["InstanceType"].startswith("g5.")
        assert node_type["min_workers"] == 0 < node_type["max_workers"]  # autoscaling
    assert prepared["provider"]["type"] == "aws"


def test_cluster_yaml_installs_the_project_and_opens_the_dashboard_port() -> None:
    config = _load()
    assert any(str(src) == "." for src in config["file_mounts"].values())
    setup = " ".join(config["setup_commands"])
    assert "pip install" in setup and "-e ~/nie" in setup
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-port=8265" in head_start
    assert "mlflow server" in head_start
    # Shared storage for datasets and checkpoints on every node.
    assert any("/mnt/nie" in c for c in config["initialization_commands"])


def test_every_top_level_key_is_commented() -> None:
    lines = CLUSTER_YAML.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")) and ":" in line:
            above = lines[i - 1] if i else ""
            assert "#" in line or above.startswith("#"), f"key without a comment: {line!r}"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.update(max_wrkers=4),  # misspelt key
        lambda c: c["available_node_types"]["gpu_g5_xlarge"].update(resources={"GPU": -1}),
        lambda c: c.update(head_node_type="no_such_type"),
    ],
    ids=["unknown-key", "negative-resource", "unknown-head-type"],
)
def test_ray_validation_rejects_broken_configs(mutate) -> None:
    """The check above can fail: Ray's validation refuses a broken variant of the file."""
    config = _load()
    mutate(config)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        _prepare_and_validate(config)
