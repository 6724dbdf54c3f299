"""Service config, the bundled Serve config file, the application builder and the result LRU
(no Ray cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nie_core.config import ConfigError
from nie_tracking.loading import ModelUnavailableError
from serve_app.app import build, build_app, check_sources
from serve_app.config import (
    DEFAULT_SERVE_CONFIG,
    ReplicaSettings,
    load_service_config,
    serve_http_options,
    service_config_from_args,
    service_config_from_file,
)
from serve_app.results import ResultCache
from tests.serve_app.conftest import service_config


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point MLflow at a store that does not exist (nothing may be created in the repo)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}")


def test_bundled_serve_config_is_a_valid_ray_serve_config() -> None:
    from ray.serve.schema import ServeDeploySchema

    document = yaml.safe_load(DEFAULT_SERVE_CONFIG.read_text())
    schema = ServeDeploySchema.model_validate(document)
    (app,) = schema.applications
    assert app.import_path == "serve_app.app:build"
    config = service_config_from_file(DEFAULT_SERVE_CONFIG)
    assert [m.label for m in config.models] == ["baseline", "hybrid"]
    assert all(m.source.startswith("models:/") for m in config.models)
    assert config.allow_untrained is False
    assert serve_http_options(DEFAULT_SERVE_CONFIG)["port"] == 8000


def test_builder_refuses_to_start_without_trained_models(tmp_path) -> None:
    missing = [
        {"name": name, "source": f"models:/nie-missing-{name}@latest-run"}
        for name in ("edsr_x2_baseline", "edsr_x2_hybrid")
    ]
    with pytest.raises(ModelUnavailableError) as caught:
        build({"config": str(DEFAULT_SERVE_CONFIG), "models": missing,
               "scorer": {"source": "models:/nie-missing-nima@latest-run"},
               "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'none.db'}"})  # fmt: skip
    message = str(caught.value)
    for name in ("edsr_x2_baseline", "edsr_x2_hybrid", "scorer", "allow_untrained"):
        assert name in message
    assert "\n" not in message  # one line for the CLI


def test_bundled_config_serves_the_zoo_until_the_demo_has_trained(tmp_path) -> None:
    from serve_app.app import apply_fallbacks
    from serve_app.config import service_config_from_args

    config = service_config_from_args({"config": str(DEFAULT_SERVE_CONFIG),
                                       "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'x.db'}"})  # fmt: skip
    served = apply_fallbacks(config)
    assert [m.source for m in served.models] == ["zoo:edsr_baseline-x2@nie-photos"] * 2
    assert served.scorer.source == "zoo:nima@nie-quality"
    build({"config": str(DEFAULT_SERVE_CONFIG),
           "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'x.db'}"})  # fmt: skip


def test_builder_with_allow_untrained_builds_an_application() -> None:
    from ray.serve import Application

    # String args, as `serve run serve_app.app:build config=... allow_untrained=true` passes them.
    app = build({"config": str(DEFAULT_SERVE_CONFIG), "allow_untrained": "true"})
    assert isinstance(app, Application)


def test_missing_checkpoint_is_a_startup_error(tmp_path: Path, tiny_checkpoints) -> None:
    models = [{"name": "edsr_x2_hybrid", "source": str(tmp_path / "nope.pt")}]
    config = service_config(tiny_checkpoints, models=models)
    with pytest.raises(ModelUnavailableError, match="nope.pt"):
        build_app(config)
    # Opting in turns the error into a warning (random weights, reported as untrained).
    warnings = check_sources(service_config(tiny_checkpoints, models=models, allow_untrained=True))
    assert len(warnings) == 1 and "RANDOM" in warnings[0]


def test_args_override_the_file_and_strings_are_parsed(tmp_path: Path) -> None:
    config = service_config_from_args(
        {"config": str(DEFAULT_SERVE_CONFIG), "tile_size": "128", "scorer": {"max_batch_size": 4}}
    )
    assert config.tile_size == 128
    assert config.scorer.max_batch_size == 4
    assert config.scorer.batch_wait_timeout_s == 0.02  # the file's value is kept


def test_plain_service_config_file(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("models:\n  - {name: a, source: runs/a}\nmax_pixels: 1000\n")
    config = load_service_config(path, ["tile_size=null"])
    assert config.models[0].name == "a" and config.max_pixels == 1000 and config.tile_size is None
    assert serve_http_options(path) == {}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"models": []}, "at least one"),
        ({"models": [{"name": "a b", "source": "x"}]}, "a b"),
        ({"models": [{"name": "input", "source": "x"}]}, "reserved"),
        ({"models": [{"name": "a", "source": "x"}, {"name": "a", "source": "y"}]}, "duplicate"),
        ({"models": [{"name": "a", "source": "x"}], "tile_size": 4}, "tile_size"),
        ({"models": [{"name": "a", "source": "x"}], "max_pixels": 0}, "max_pixels"),
        ({"models": [{"name": "a", "source": "x"}], "tile_sise": 64}, "tile_sise"),
        ({"models": [{"name": "a", "source": "x"}], "fast": "turbo"}, "fast"),
        (
            {
                "models": [{"name": "a", "source": "x"}],
                "enhancer": {"min_replicas": 3, "max_replicas": 2},
            },
            "min_replicas",
        ),
    ],
)
def test_bad_service_config_names_the_problem(data: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        service_config_from_args(data)


def test_serve_config_without_our_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("applications:\n  - {name: x, import_path: other.module:app}\n")
    with pytest.raises(ConfigError, match="serve_app.app:build"):
        service_config_from_file(path)


def test_replica_settings_become_serve_deployment_options() -> None:
    options = ReplicaSettings(num_cpus=0.5, min_replicas=1, max_replicas=3).deployment_options()
    assert options["ray_actor_options"] == {"num_cpus": 0.5}
    assert options["autoscaling_config"]["max_replicas"] == 3
    assert options["autoscaling_config"]["min_replicas"] == 1
    assert {"max_ongoing_requests", "health_check_period_s", "health_check_timeout_s"} <= set(
        options
    )


def test_result_cache_is_bounded_by_count_and_bytes_and_least_recently_used() -> None:
    cache = ResultCache(max_entries=2, max_bytes=100)
    cache.put("a", {"id": "a"}, {"input": b"x" * 30})
    cache.put("b", {"id": "b"}, {"input": b"x" * 30})
    assert cache.summary("a") == {"id": "a"}  # touch a: b is now the oldest
    cache.put("c", {"id": "c"}, {"input": b"x" * 30})
    assert cache.summary("b") is None and len(cache) == 2
    cache.put("d", {"id": "d"}, {"input": b"x" * 60, "m": b"y" * 10})  # 130 bytes: a goes
    assert cache.summary("a") is None and cache.summary("c") == {"id": "c"}
    assert cache.image("d", "m") == b"y" * 10 and cache.total_bytes == 100
    cache.put("huge", {}, {"input": b"z" * 101})  # larger than the whole budget: not kept
    assert cache.summary("huge") is None and cache.summary("d") is not None
    with pytest.raises(ValueError, match="max_entries"):
        ResultCache(0, 10)
