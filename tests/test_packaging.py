"""The package metadata builds without setuptools' deprecation warnings (offline, in a second)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_metadata_builds_with_an_spdx_license_and_no_license_deprecation(tmp_path) -> None:
    """Issue 21 item 7: ``license = { text = ... }`` made every build (``pip install -e .``
    too) warn that such projects stop building after 2027-02-18."""
    hook = ("import sys; from setuptools import build_meta; "
            "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-c", hook, str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    deprecations = [line for line in out.splitlines() if "DeprecationWarning" in line]
    assert not [line for line in deprecations if "licen" in line.lower()], out[-3000:]
    metadata = (tmp_path / proc.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
