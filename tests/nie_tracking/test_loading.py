"""Model sources: checkpoints, the MLflow registry, and the explicit random-weights opt-in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nie_core.checkpoint import load_model
from nie_core.inference import enhance
from nie_tracking.loading import (
    ModelUnavailableError,
    load_enhancer,
    load_scorer,
    registered_run_model,
    resolve_source,
)


def test_checkpoint_enhancers_report_kind_scales_and_task(tiny_checkpoints) -> None:
    edsr = load_enhancer(str(tiny_checkpoints["baseline"]))
    assert (edsr.kind, edsr.scales, edsr.task, edsr.trained) == ("edsr", (2,), "sr", True)
    assert edsr.origin == str(tiny_checkpoints["baseline"].resolve())
    mdsr = load_enhancer(str(tiny_checkpoints["mdsr"]))
    assert (mdsr.kind, mdsr.scales) == ("mdsr", (2, 3))
    deblur = load_enhancer(str(tiny_checkpoints["deblur"]))
    assert (deblur.scales, deblur.task) == ((1,), "deblur")  # from the checkpoint's config
    assert load_enhancer(str(tiny_checkpoints["deblur"]), task="sr").task == "sr"  # override
    # A run folder holding checkpoint.pt works as well.
    folder = tiny_checkpoints["baseline"].parent / "run"
    folder.mkdir(exist_ok=True)
    (folder / "checkpoint.pt").write_bytes(tiny_checkpoints["baseline"].read_bytes())
    assert load_enhancer(str(folder)).fingerprint == edsr.fingerprint


def test_fingerprint_follows_the_weights(tiny_checkpoints) -> None:
    a = load_enhancer(str(tiny_checkpoints["baseline"]))
    again = load_enhancer(str(tiny_checkpoints["baseline"]))
    b = load_enhancer(str(tiny_checkpoints["hybrid"]))
    assert a.fingerprint == again.fingerprint
    assert a.fingerprint != b.fingerprint
    assert len(a.fingerprint) == 12


def test_missing_source_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    missing = str(tmp_path / "runs" / "nothing.pt")
    with pytest.raises(ModelUnavailableError) as caught:
        load_enhancer(missing)
    assert "nothing.pt" in str(caught.value) and "allow_untrained" in str(caught.value)
    with pytest.raises(ModelUnavailableError, match="empty"):
        resolve_source("")


def test_random_weights_only_with_allow_untrained(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="random weights"):
        load_enhancer("edsr_baseline")  # an architecture name is not trained weights
    model = load_enhancer(
        "edsr_baseline",
        allow_untrained=True,
        arch_kwargs={"scale": 3, "n_resblocks": 1, "n_feats": 8},
    )
    assert model.trained is False and model.scales == (3,) and "untrained" in model.origin
    fallback = load_enhancer(
        str(tmp_path / "missing.pt"),
        allow_untrained=True,
        arch="mdsr_baseline",
        arch_kwargs={"scales": (2, 4), "n_resblocks": 1, "n_feats": 8},
    )
    assert fallback.kind == "mdsr" and fallback.scales == (2, 4) and not fallback.trained


def test_scorer_sources(tiny_checkpoints) -> None:
    scorer = load_scorer(str(tiny_checkpoints["nima"]))
    assert scorer.kind == "nima" and scorer.trained
    untrained = load_scorer("", allow_untrained=True, backbone="mnasnet0_5")
    assert not untrained.trained
    with pytest.raises(ModelUnavailableError):
        load_scorer("")
    with pytest.raises(ModelUnavailableError, match="not a NIMA scorer"):
        load_scorer(str(tiny_checkpoints["baseline"]))
    with pytest.raises(ModelUnavailableError, match="not an enhancer"):
        load_enhancer(str(tiny_checkpoints["nima"]))


def test_registry_store_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ModelUnavailableError, match="no MLflow store"):
        resolve_source("models:/anything@champion", uri)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_registry_sources_load_the_logged_model(tmp_path: Path, tiny_checkpoints) -> None:
    """A model logged and registered as the training jobs do it (pickle format, alias) loads
    through every URI form and takes any image size."""
    import nie_tracking as tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    original = load_model(tiny_checkpoints["hybrid"])
    experiment = tracking.get_or_create_experiment(uri, "serve-tests")
    run = tracking.client(uri).create_run(experiment)
    tracking.client(uri).log_param(run.info.run_id, "data.task", "deblur")
    version = tracking.log_and_register_model(
        uri, run.info.run_id, original, "tiny-edsr", alias="champion"
    )
    assert version == "1"
    assert registered_run_model(run.info.run_id, uri) == "models:/tiny-edsr/1"
    bare = tracking.client(uri).create_run(experiment).info.run_id
    with pytest.raises(ModelUnavailableError, match="registered no model"):
        registered_run_model(bare, uri)

    for source in ("models:/tiny-edsr@champion", "models:/tiny-edsr/1", "models:/tiny-edsr/latest"):
        resolved = resolve_source(source, uri)
        assert (resolved.location, resolved.task) == ("models:/tiny-edsr/1", "deblur")
    loaded = load_enhancer("models:/tiny-edsr@champion", tracking_uri=uri)
    assert loaded.origin == "models:/tiny-edsr/1" and loaded.trained
    assert loaded.task == "deblur"  # from the run's params
    for shape in [(1, 3, 20, 24), (2, 3, 33, 17)]:
        x = torch.rand(shape)
        expected = enhance(original, x, fast=False)
        assert torch.allclose(enhance(loaded.module, x, fast=False), expected, atol=1e-6)
    with pytest.raises(ModelUnavailableError, match="tiny-edsr@nope"):
        load_enhancer("models:/tiny-edsr@nope", tracking_uri=uri)
    with pytest.raises(ModelUnavailableError, match="not found"):
        resolve_source("models:/no-such-model/3", uri)
    with pytest.raises(ModelUnavailableError, match="must be"):
        resolve_source("models:/just-a-name", uri)


def test_zoo_sources_load_the_shipped_models() -> None:
    enhancer = load_enhancer("zoo:edsr_baseline-x2@nie-photos")
    assert (enhancer.kind, enhancer.scales, enhancer.task, enhancer.trained) == (
        "edsr", (2,), "sr", True)  # fmt: skip
    assert enhancer.origin == "zoo:edsr_baseline-x2@nie-photos"
    scorer = load_scorer("zoo:nima@nie-quality")
    assert scorer.kind == "nima" and scorer.module.input_size is None
    with pytest.raises(ModelUnavailableError, match="no zoo model"):
        resolve_source("zoo:edsr_baseline-x5@nie-photos")


def test_models_without_trained_weights_serve_their_fallback(tmp_path: Path) -> None:
    from serve_app.app import apply_fallbacks
    from serve_app.config import service_config_from_args

    store = f"sqlite:///{tmp_path / 'empty.db'}"
    config = service_config_from_args({
        "models": [
            {"name": "a", "source": "models:/nie-missing@latest-run",
             "fallback": "zoo:edsr_baseline-x2@nie-photos"},
            {"name": "b", "source": "models:/nie-missing-too@latest-run"},
        ],
        "scorer": {"source": "zoo:nima@nie-quality"},
        "mlflow_tracking_uri": store,
    })  # fmt: skip
    swapped = apply_fallbacks(config)
    assert [m.source for m in swapped.models] == [
        "zoo:edsr_baseline-x2@nie-photos", "models:/nie-missing-too@latest-run"]  # fmt: skip
