"""``nie serve``: its start-up check in process, and a real Ctrl-C on a real ``nie serve``."""

from __future__ import annotations

from pathlib import Path

import pytest

from nie_cli.main import main
from tests.nie_cli.conftest import one_error_line

pytestmark = pytest.mark.usefixtures("isolated_cli")


def test_serve_refuses_to_start_without_trained_models(tmp_path: Path, capsys) -> None:
    """A model with neither trained weights nor a fallback stops the service before it starts
    (the bundled config's models fall back to the zoo)."""
    config = tmp_path / "serve.yaml"
    config.write_text(
        "models:\n  - name: edsr_x2_baseline\n    source: models:/nie-missing@latest-run\n"
        "scorer:\n  source: zoo:nima@nie-quality\n"
        f"mlflow_tracking_uri: sqlite:///{tmp_path / 'none.db'}\n"
    )
    assert main(["serve", "--config", str(config), "--port", "1"]) == 2
    line = one_error_line(capsys, "serve")
    assert "edsr_x2_baseline" in line and "allow_untrained" in line


@pytest.mark.ray
@pytest.mark.slow
def test_ctrl_c_stops_nie_serve_and_everything_it_started(tmp_path: Path) -> None:
    """`nie serve` as from a terminal (its own process group, an embedded Ray; in an empty
    folder, so it serves the zoo's models): one Ctrl-C ends the service, Ray and every process
    the command started, with one goodbye line and status 0."""
    import httpx

    from tests.conftest import free_port
    from tests.processes import NieProcess, wait_until_gone

    port = free_port()
    serve = NieProcess(["serve", "--port", str(port)], tmp_path / "serve.log", cwd=tmp_path)
    try:
        serve.wait_for(r"press Ctrl-C to stop", timeout_s=300)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).status_code == 200
        started = serve.descendants()
        assert started
        serve.ctrl_c()
        assert serve.proc.wait(timeout=90) == 0, serve.output()[-3000:]
        assert wait_until_gone(started, timeout_s=60) == set()
    finally:
        serve.stop()
    assert serve.output().rstrip().splitlines()[-1] == "nie serve: stopped"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
