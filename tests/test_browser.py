"""A real browser (Debian's chromium, driven by Playwright) types an instruction and sees steps appear."""

import shutil

import pytest

from workbench.app import build_app
from workbench.app.render import CSS
from workbench.store import Store
from workbench.testing import CHROMIUM as CHROMIUM_PATH
from workbench.testing import CHROMIUM_ARGS as LAUNCH_ARGS
from workbench.testing import free_port

CHROMIUM = shutil.which("chromium") or CHROMIUM_PATH
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    demo = build_app(model="tiny", store=Store(tmp_path_factory.mktemp("browser") / "runs.db"))
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, css=CSS, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#wb-instruction textarea").wait_for(timeout=60_000)
        yield page
        browser.close()


def test_typing_an_instruction_streams_steps_into_the_timeline(page, tmp_path):
    page.locator("#wb-instruction textarea").fill("When was Varnholt founded?")
    page.locator("#wb-run").click()
    page.locator("#wb-timeline .wb-step").first.wait_for(timeout=60_000)
    page.wait_for_function("document.querySelector('#wb-status') && "
                           "document.querySelector('#wb-status').innerText.includes('ended:')", timeout=120_000)
    steps = page.locator("#wb-timeline .wb-step").count()
    assert steps >= 1
    assert "When was Varnholt founded?" in page.locator("#wb-timeline").inner_text()
    assert page.locator("#wb-run-id textarea, #wb-run-id input").first.input_value()
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)


def test_an_empty_instruction_shows_an_error_and_the_page_keeps_working(page):
    page.locator("#wb-instruction textarea").fill("   ")
    page.locator("#wb-run").click()
    page.get_by_text("The instruction is empty").first.wait_for(timeout=30_000)
    page.locator("#wb-instruction textarea").fill("What is 2 + 3?")
    page.locator("#wb-run").click()
    page.wait_for_function("document.querySelector('#wb-status').innerText.includes('ended:')", timeout=120_000)
