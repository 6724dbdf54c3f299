"""Tiny job configs for the Ray Train tests (seconds per epoch on 2 CPUs)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest

from nie_core.config import load_config
from ray_jobs.config import EnhancerJobConfig, NimaJobConfig

Job = TypeVar("Job", EnhancerJobConfig, NimaJobConfig)


def tiny_enhancer(sample: dict, tmp: Path, uri: str, *extra: str) -> EnhancerJobConfig:
    """edsr_baseline with 2 blocks of 16 features, 16-pixel patches, 2 workers of 0.5 CPU."""
    overrides = [
        f"data.root={sample['div2k']}",
        f"data.cache_dir={tmp / 'cache'}",
        "data.patch_size=16",
        "data.repeat=4",
        "data.max_valid_images=2",
        "model.n_resblocks=2",
        "model.n_feats=16",
        "run.batch_size=4",
        "run.epochs=2",
        "run.steps_per_epoch=3",
    ]
    return _tiny_job(EnhancerJobConfig, tmp, uri, *overrides, *extra)


def tiny_nima(sample: dict, tmp: Path, uri: str, *extra: str) -> NimaJobConfig:
    """NIMA on MnasNet 0.5 at 64x64 crops, 2 workers of 0.5 CPU."""
    overrides = [
        f"data.root={sample['ava']}",
        "data.resize=72",
        "data.crop=64",
        "data.max_valid_images=24",
        "model.backbone=mnasnet0_5",
        "run.batch_size=8",
        "run.epochs=3",
        "run.steps_per_epoch=4",
    ]
    return _tiny_job(NimaJobConfig, tmp, uri, *overrides, *extra)


def _tiny_job(config_class: type[Job], tmp: Path, uri: str, *overrides: str) -> Job:
    """``config_class`` with what both tiny jobs share (learning rate 0.001, runs under
    ``tmp/runs``, 2 workers of 0.5 CPU, MLflow at ``uri``), then ``overrides``."""
    shared = [
        "optim.lr=0.001",
        f"run.storage_path={tmp / 'runs'}",
        "scaling.num_workers=2",
        "scaling.cpus_per_worker=0.5",
        f"tracking.tracking_uri={uri}",
    ]
    return load_config(config_class, None, [*shared, *overrides])


@pytest.fixture(scope="session")
def trained_nima(ray_cluster, sample_data, tmp_path_factory):
    """One 2-worker NIMA run on the sample AVA set, shared by the tests that need a scorer."""
    from ray_jobs.nima import train_nima

    tmp = tmp_path_factory.mktemp("nima")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    cfg = tiny_nima(sample_data, tmp, uri)
    return cfg, train_nima(cfg)
