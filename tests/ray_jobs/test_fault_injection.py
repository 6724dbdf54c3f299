"""ray_jobs.fault_injection: crashes for NIE's own tests, kept out of the user configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nie_core.config import ConfigError, config_from_dict, load_config
from ray_jobs.config import EnhancerJobConfig, TuneJobConfig
from ray_jobs.fault_injection import (
    NO_FAULTS,
    Faults,
    crash_once_at_step,
    pause_once_at_step,
    trial_faults,
)


def test_crash_happens_once_on_rank_0_at_the_step(tmp_path: Path) -> None:
    faults = Faults(fail_after_step=3)
    crash_once_at_step(0, 2, faults, tmp_path)  # not yet
    crash_once_at_step(1, 3, faults, tmp_path)  # not rank 0
    crash_once_at_step(0, 3, NO_FAULTS, tmp_path)  # no faults
    with pytest.raises(RuntimeError, match="injected worker failure at step 3"):
        crash_once_at_step(0, 3, faults, tmp_path)
    crash_once_at_step(0, 3, faults, tmp_path)  # the retry after the crash goes on


def test_every_rank_pauses_once_at_the_step_and_says_so(tmp_path: Path) -> None:
    faults = Faults(pause_at_step=5)
    pause_once_at_step(0, 4, faults, tmp_path, limit_s=0)  # not yet
    pause_once_at_step(0, 5, NO_FAULTS, tmp_path, limit_s=0)  # no faults
    assert list(tmp_path.iterdir()) == []
    for rank in (0, 1):
        # Nobody kills this process: the pause ends in an error after its limit.
        with pytest.raises(RuntimeError, match=f"pause at step 5 on rank {rank}: not killed"):
            pause_once_at_step(rank, 5, faults, tmp_path, limit_s=0)
        assert (tmp_path / f"injected_pause.rank{rank}").read_text() == "5"
    pause_once_at_step(0, 5, faults, tmp_path, limit_s=0)  # the attempt after the kill goes on
    pause_once_at_step(1, 5, faults, tmp_path, limit_s=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["injected_pause.rank0",
                                                          "injected_pause.rank1"]  # fmt: skip


def test_the_first_trials_claim_the_crash_slots_and_keep_them(tmp_path: Path) -> None:
    faults = Faults(fail_after_step=4, fail_first_trials=2)
    assert trial_faults(faults, tmp_path, "trial_a") == Faults(fail_after_step=4)
    assert trial_faults(faults, tmp_path, "trial_b") == Faults(fail_after_step=4)
    assert trial_faults(faults, tmp_path, "trial_c") == NO_FAULTS
    assert trial_faults(faults, tmp_path, "trial_a") == Faults(fail_after_step=4)  # a retry
    assert trial_faults(Faults(fail_first_trials=1), tmp_path / "other", "t") == Faults(1)
    assert Faults.from_dict(faults.to_dict()) == faults and Faults.from_dict(None) == NO_FAULTS


@pytest.mark.parametrize(
    ("cls", "override"),
    [(EnhancerJobConfig, "run.fail_after_step=4"), (TuneJobConfig, "fail_first_trials=1")],
)
def test_the_old_config_keys_name_the_testing_module(cls: type, override: str) -> None:
    with pytest.raises(ConfigError, match=r"was removed: .*ray_jobs\.fault_injection"):
        load_config(cls, None, [override])


def test_configs_saved_with_the_old_key_unset_still_load() -> None:
    cfg = config_from_dict(EnhancerJobConfig, {"run": {"fail_after_step": None, "epochs": 3}})
    assert cfg.run.epochs == 3
    assert config_from_dict(TuneJobConfig, {"fail_first_trials": 0}) == TuneJobConfig()
    with pytest.raises(ConfigError, match="'run.fail_after_step' was removed"):
        config_from_dict(EnhancerJobConfig, {"run": {"fail_after_step": 2}})
