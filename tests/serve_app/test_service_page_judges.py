"""The judges beside NIMA, over real HTTP and in headless Chromium: every output of a result
carries NIQE, LR-consistency and artifacts, and the "best" badge goes only to an output that no
judge rates worse (``nie_core.judging``), never simply to the highest NIMA.

Two stand-in models built from EDSR weights (``tests.stand_ins.interpolating_edsr``) are swapped
into the package's service in place (``serve deploy`` of their ``user_config``; restored at the
end): "edsr_x2_baseline" upsamples bilinearly; "edsr_x2_hybrid" adds a faint checkerboard
(2/255) and, in the first result, also darkens the image by the offset that raises the tiny
random NIMA the most (found in process first), as a hybrid model games its scorer: NIMA prefers
it while LR-consistency, artifacts and NIQE rate it worse, so no output is best. In the second
result the hybrid slot only adds the checkerboard: NIMA cannot tell the two apart (within its
tolerance), the other judges prefer the plain one, which gets the badge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from nie_core.checkpoint import save_checkpoint
from nie_core.judging import JUDGES
from tests.serve_app import calls
from tests.serve_app.browser import needs_chromium
from tests.serve_app.conftest import png_bytes, serve_deploy, write_serve_config
from tests.stand_ins import interpolating_edsr

pytestmark = pytest.mark.ray

MODELS = "edsr_x2_baseline,edsr_x2_hybrid"
PATTERN = 2 / 255
KWARGS = {"scale": 2, "n_feats": 16, "n_resblocks": 2}  # interpolating_edsr's defaults


def save_stand_in(path: Path, pattern: float = 0.0, offset: float = 0.0) -> Path:
    """An ``interpolating_edsr`` checkpoint; ``offset`` is added to every output pixel."""
    model = interpolating_edsr(pattern)
    model.tail[1].bias.data.fill_(offset)
    state = {"model_name": "edsr_baseline", "model_kwargs": KWARGS, "model": model.state_dict(),
             "config": {"data": {"task": "sr"}}}  # fmt: skip
    return save_checkpoint(path, state)


def wait_for(condition: Callable[[], bool], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def results(service, tmp_path_factory) -> dict[str, dict]:
    """{"disagree": compare body, "agree": compare body} of COFFEE_SMALL through the stand-ins
    (the results stay in the service's store after the models are restored)."""
    from ray import serve

    root = tmp_path_factory.mktemp("stand_ins")
    image = calls.COFFEE_SMALL
    plain = save_stand_in(root / "plain.pt")
    nima = service.checkpoints["nima"]
    plain_nima = calls.in_process_score(nima, calls.in_process_enhance(plain, image))
    gains = {}
    for level in (4, 8, 16, 24):
        gaming = save_stand_in(root / f"gaming_{level}.pt", PATTERN, -level / 255)
        output = calls.in_process_enhance(gaming, image)
        gains[gaming] = calls.in_process_score(nima, output) - plain_nima
    gaming = max(gains, key=gains.get)
    assert gains[gaming] > 0.1, f"no darkening raises the tiny NIMA enough: {gains}"
    patterned = save_stand_in(root / "patterned.pt", PATTERN)

    def origin(model: str) -> str:
        handle = serve.get_deployment_handle(f"Enhancer_{model}", app_name=service.app_name)
        return handle.info.remote().result(timeout_s=30)["origin"]

    def swap(sources: dict[str, Path], name: str) -> None:
        deployments = [
            {"name": f"Enhancer_{model}", "user_config": {"source": str(source)}}
            for model, source in sources.items()
        ]
        config_file = write_serve_config(
            root / name, service.config, service.port, deployments=deployments
        )
        serve_deploy(service, config_file)
        wait_for(lambda: all(origin(m) == str(s.resolve()) for m, s in sources.items()))

    def compare() -> dict:
        response = calls.post(service, "/v1/compare", png_bytes(image), models=MODELS)
        assert response.status_code == 200, response.text
        return response.json()

    before = {m: origin(m) for m in ("edsr_x2_baseline", "edsr_x2_hybrid")}
    out = {}
    try:
        swap({"edsr_x2_baseline": plain, "edsr_x2_hybrid": gaming}, "gaming.yaml")
        out["disagree"] = compare()
        # Every swapped deployment is named again: one left out would go back to its source.
        swap({"edsr_x2_baseline": plain, "edsr_x2_hybrid": patterned}, "patterned.yaml")
        out["agree"] = compare()
    finally:
        serve_deploy(service, service.serve_config_file)
        wait_for(lambda: all(origin(m) == o for m, o in before.items()))
    return out


def outputs_of(body: dict) -> tuple[dict, dict]:
    by_name = {o["name"]: o for o in body["outputs"]}
    return by_name["edsr_x2_baseline"], by_name["edsr_x2_hybrid"]


def test_the_json_carries_the_judges_of_every_output(service, results) -> None:
    for body in results.values():
        assert body["input"]["judges"] is None and body["input"]["verdict"] is None
        for output in body["outputs"]:
            judges = output["judges"]
            assert judges["nima"] == output["score"]["mean"]
            assert judges["region"] == [0, 0, 256, 192]  # the whole 256 x 192 output
            assert all(isinstance(judges[k], float) for k in ("niqe", "lr_psnr_y", "artifacts"))
        stored = httpx.get(f"{service.url}/v1/results/{body['result_id']}", timeout=30).json()
        assert stored == body
    plain, gaming = outputs_of(results["disagree"])
    assert plain["judges"]["artifacts"] < 0.5 < 2.0 < gaming["judges"]["artifacts"]
    assert gaming["judges"]["lr_psnr_y"] < plain["judges"]["lr_psnr_y"] - 3.0  # darker
    assert gaming["judges"]["niqe"] > plain["judges"]["niqe"]


def test_the_badge_is_withheld_when_nima_and_the_other_judges_disagree(results) -> None:
    body = results["disagree"]
    plain, gaming = outputs_of(body)
    assert gaming["judges"]["nima"] > plain["judges"]["nima"] + 0.1  # NIMA is gamed
    assert body["winner"] is None
    assert not plain["verdict"]["best"] and not gaming["verdict"]["best"]
    nima = f"({gaming['judges']['nima']:.2f} vs {plain['judges']['nima']:.2f})"
    reason = gaming["verdict"]["reason"]
    assert reason.startswith(f"NIMA prefers edsr_x2_hybrid over edsr_x2_baseline {nima}, but ")
    assert "the artifact measure, NIQE and LR-consistency rate it worse" in reason
    nima_other_way = f"({plain['judges']['nima']:.2f} vs {gaming['judges']['nima']:.2f})"
    assert plain["verdict"]["reason"].startswith(
        "The artifact measure, NIQE and LR-consistency prefer edsr_x2_baseline over "
    )
    assert plain["verdict"]["reason"].endswith(f"but NIMA rates it worse {nima_other_way}")


def test_the_badge_is_given_when_all_judges_agree(results) -> None:
    body = results["agree"]
    plain, patterned = outputs_of(body)
    # NIMA cannot tell them apart; the pattern is all the other judges see.
    assert abs(patterned["judges"]["nima"] - plain["judges"]["nima"]) < JUDGES["nima"].tolerance
    assert body["winner"] == "edsr_x2_baseline"
    assert plain["verdict"] == {
        "best": True,
        "reason": "No judge rates edsr_x2_baseline worse than edsr_x2_hybrid (judges: NIMA, "
        "the artifact measure, NIQE, LR-consistency)",
    }
    assert not patterned["verdict"]["best"]
    assert patterned["verdict"]["reason"].startswith(
        "The artifact measure and NIQE rate edsr_x2_hybrid worse than edsr_x2_baseline ("
    )


@needs_chromium
def test_the_page_shows_the_judges_and_the_badge_only_where_they_agree(
    service, results, chromium, tmp_path: Path
) -> None:
    page = chromium.new_context(viewport={"width": 1280, "height": 1000}).new_page()

    def show(body: dict) -> None:
        page.goto(f"{service.url}/#/results/{body['result_id']}")
        page.wait_for_selector(".card[data-name='edsr_x2_hybrid'] .judges dd[data-judge='niqe']")

    formats = {"niqe": "{:.2f}", "lr_psnr_y": "{:.2f} dB", "artifacts": "{:.2f} dB"}
    for case, body in results.items():
        show(body)
        page.screenshot(path=str(tmp_path / f"{case}.png"), full_page=True)
        assert page.locator(".card.input-card .judges").is_hidden()
        for output in body["outputs"]:
            card = page.locator(f".card[data-name='{output['name']}']")
            for key, fmt in formats.items():
                shown = card.locator(f".judges dd[data-judge='{key}']").inner_text()
                assert shown == fmt.format(output["judges"][key]), (case, key)
            assert "lower is better" in card.locator(".judges").inner_text()
            note, ribbon = card.locator(".verdict-note"), card.locator(".ribbon")
            if output["verdict"]["best"]:
                assert ribbon.is_visible() and ribbon.inner_text().strip().lower() == "best"
                assert note.is_hidden() and "winner" in card.get_attribute("class")
            else:
                assert ribbon.is_hidden() and "winner" not in card.get_attribute("class")
                assert note.inner_text() == f"Not best: {output['verdict']['reason']}."
    # The gamed result: no card is best, and the hybrid's card names the judges against it.
    show(results["disagree"])
    assert page.locator(".card.winner").count() == 0
    hybrid_note = page.locator(".card[data-name='edsr_x2_hybrid'] .verdict-note").inner_text()
    assert "NIMA prefers edsr_x2_hybrid" in hybrid_note and "LR-consistency" in hybrid_note
    show(results["agree"])
    assert page.locator(".card.winner").get_attribute("data-name") == "edsr_x2_baseline"
