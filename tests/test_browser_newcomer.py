"""The newcomer's first hour in a real browser (Debian's chromium through Playwright), on the real default model.

Opens the app as `python3 bootstrap.py serve` starts it (the shipped adapter on SmolLM2-135M-Instruct), runs an
example question, opens the step inspector, attributes that step and sees the heatmap, then uploads a Markdown
corpus and gets an answer whose observation quotes it. Screenshots go to .test-artifacts/browser/ (or
$WORKBENCH_TEST_ARTIFACTS) so a person can look at what the newcomer saw.
"""

import os
import shutil
from pathlib import Path

import pytest

from workbench.testing import CHROMIUM as CHROMIUM_PATH
from workbench.testing import CHROMIUM_ARGS as LAUNCH_ARGS
from workbench.testing import free_port

CHROMIUM = shutil.which("chromium") or CHROMIUM_PATH
ARTIFACTS = Path(os.environ.get("WORKBENCH_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / ".test-artifacts"))
pytestmark = [
    pytest.mark.browser,
    pytest.mark.real_model,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]

GUIDE = """# Bellwether Lighthouse

The Bellwether Lighthouse stands on the northern cape of Orrin Island. It was first lit in 1874.
Its lamp can be seen from 31 kilometres away.

The keeper's cottage is now a small museum about shipwrecks.
"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from workbench.app import launch

    port = free_port()
    demo = launch(port=port, store=tmp_path_factory.mktemp("newcomer") / "runs.db", preload=False, block=False,
                  quiet=True)  # as `workbench serve` does: the shipped adapter by default
    yield f"http://127.0.0.1:{port}/", demo
    demo.close()


def test_the_newcomers_first_hour_in_a_browser(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    url, demo = app_url
    shots = ARTIFACTS / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    guide = tmp_path / "bellwether.md"
    guide.write_text(GUIDE, encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#wb-instruction textarea").wait_for(timeout=60_000)
        model = page.locator("#wb-model input").first.input_value()
        assert model == "SmolLM2-135M-Instruct + react LoRA (shipped)"  # a readable name, not a path
        page.screenshot(path=str(shots / "01-opened.png"), full_page=True)

        # An example question from the demo world, run.
        first_example = page.locator("#wb-examples button, #wb-examples tr").first
        first_example.click()
        page.wait_for_function("document.querySelector('#wb-instruction textarea').value.length > 0", timeout=30_000)
        question = page.locator("#wb-instruction textarea").input_value()
        assert question in demo.workbench_context.examples
        page.locator("#wb-run").click()
        page.wait_for_function("document.querySelector('#wb-status').innerText.includes('ended:')", timeout=300_000)
        assert page.locator("#wb-timeline .wb-step").count() >= 1
        page.screenshot(path=str(shots / "02-example-run.png"), full_page=True)

        # The step inspector: the exact prompt of the last step, coloured by segment.
        page.get_by_text("Inspect a step: its exact prompt and raw output").click()
        page.locator(".wb-seg").first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "03-inspector.png"), full_page=True)

        # Attribute that step: the Attribution tab opens with the run and step filled in; the heatmap appears.
        page.locator("#wb-attribute-step").click()
        page.locator("#wb-attr-go").click()
        page.locator("#wb-attr-heat .js-plotly-plot").first.wait_for(timeout=300_000)
        assert "forward passes" in page.locator("#wb-attr-result").inner_text()
        assert "explains" in page.locator("#wb-attr-result").inner_text()  # the map's faithfulness, in words
        page.screenshot(path=str(shots / "04-attribution.png"), full_page=True)

        # The surrogate at sentence level: segment totals, the map over the prompt's text, the dependency map.
        page.locator("#wb-attr-method label", has_text="surrogate").click()
        page.locator("#wb-attr-granularity label", has_text="sentence").click()
        page.locator("#wb-attr-go").click()
        page.wait_for_function("document.querySelector('#wb-attr-result').innerText.includes('surrogate')",
                               timeout=600_000)
        assert page.locator("#wb-attr-text .wb-map-f").count() > 10  # every sentence of the prompt, shaded
        assert "tokens recomputed" in page.locator("#wb-attr-result").inner_text()
        page.locator("#wb-attr-leave-own input").check()
        page.locator("#wb-attr-text").get_by_text("left out of the shading").wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "04b-attribution-sentences.png"), full_page=True)
        page.get_by_text("Dependency map: which earlier step drove each step").click()
        page.locator("#wb-attr-map-go").click()
        page.locator("#wb-attr-map .js-plotly-plot").first.wait_for(timeout=600_000)
        page.screenshot(path=str(shots / "04c-dependency-map.png"), full_page=True)

        # Upload a Markdown corpus, ask about it, and see the observation quote it.
        page.get_by_role("tab", name="Run").click()
        page.get_by_text("Your documents: upload a corpus").click()
        page.locator("#wb-corpus-files input[type=file]").set_input_files(str(guide))
        page.locator("#wb-corpus-name textarea, #wb-corpus-name input").first.fill("orrin")
        page.locator("#wb-corpus-add").click()
        page.wait_for_function("document.querySelector('#wb-corpus-status').innerText.includes('Added')",
                               timeout=120_000)
        assert page.locator("#wb-knowledge input").first.input_value() == "orrin (uploaded · 1 article)"
        page.locator("#wb-instruction textarea").fill("When was the Bellwether Lighthouse first lit?")
        page.locator("#wb-run").click()
        page.wait_for_function(
            "document.querySelector('#wb-status').innerText.includes('ended:') && "
            "document.querySelector('#wb-timeline').innerText.includes('Bellwether')", timeout=300_000)
        timeline = page.locator("#wb-timeline").inner_text()
        page.screenshot(path=str(shots / "05-own-documents.png"), full_page=True)

        # History, opened now, lists the runs made since the page loaded.
        run_id = page.locator("#wb-run-id textarea, #wb-run-id input").first.input_value()
        page.get_by_role("tab", name="History").click()
        page.wait_for_function(f"document.querySelector('#wb-history').innerText.includes('{run_id}')",
                               timeout=30_000)
        page.screenshot(path=str(shots / "06-history.png"), full_page=True)
        browser.close()
    assert "It was first lit in 1874." in timeline  # an observation quotes the uploaded document
