"""Tiny job configs for the Ray Train tests (seconds per epoch on 2 CPUs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nie_core.config import load_config
from ray_jobs.config import EnhancerJobConfig, NimaJobConfig


def tiny_enhancer(sample: dict, tmp: Path, uri: str, *extra: str) -> EnhancerJobConfig:
    """edsr_baseline with 2 blocks of 16 features, 16-pixel patches, 2 workers of 0.5 CPU."""
    return load_config(
        EnhancerJobConfig,
        None,
        [
            f"data.root={sample['div2k']}",
            "data.patch_size=16",
            "data.repeat=4",
            "data.max_valid_images=2",
            f"data.cache_dir={tmp / 'cache'}",
            "model.n_resblocks=2",
            "model.n_feats=16",
            "optim.lr=0.001",
            "run.batch_size=4",
            "run.epochs=2",
            "run.steps_per_epoch=3",
            f"run.storage_path={tmp / 'runs'}",
            "scaling.num_workers=2",
            "scaling.cpus_per_worker=0.5",
            f"tracking.tracking_uri={uri}",
            *extra,
        ],
    )


def tiny_nima(sample: dict, tmp: Path, uri: str, *extra: str) -> NimaJobConfig:
    """NIMA on MnasNet 0.5 at 64x64 crops, 2 workers of 0.5 CPU."""
    return load_config(
        NimaJobConfig,
        None,
        [
            f"data.root={sample['ava']}",
            "data.resize=72",
            "data.crop=64",
            "data.max_valid_images=24",
            "model.backbone=mnasnet0_5",
            "optim.lr=0.001",
            "run.batch_size=8",
            "run.epochs=3",
            "run.steps_per_epoch=4",
            f"run.storage_path={tmp / 'runs'}",
            "scaling.num_workers=2",
            "scaling.cpus_per_worker=0.5",
            f"tracking.tracking_uri={uri}",
            *extra,
        ],
    )


@pytest.fixture(scope="session")
def trained_nima(ray_cluster, sample_data, tmp_path_factory):
    """One 2-worker NIMA run on the sample AVA set, shared by the tests that need a scorer."""
    from ray_jobs.nima import train_nima

    tmp = tmp_path_factory.mktemp("nima")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    cfg = tiny_nima(sample_data, tmp, uri)
    return cfg, train_nima(cfg)
