"""A real browser (Debian's chromium, driven by Playwright) steps through a run by hand and forks a step."""

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
def app(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("browser-steps") / "runs.db")
    demo = build_app(model="tiny", store=store)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, css=CSS, quiet=True)
    yield f"http://127.0.0.1:{port}/", store
    demo.close()


@pytest.fixture(scope="module")
def page(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app[0], wait_until="domcontentloaded")
        page.locator("#wb-instruction textarea").wait_for(timeout=60_000)
        yield page
        browser.close()


def _pause_says(page, text: str) -> None:
    page.wait_for_function(f"document.querySelector('#wb-pause') && "
                           f"document.querySelector('#wb-pause').innerText.includes({text!r})", timeout=120_000)


def test_stepping_through_a_run_by_hand_with_an_edited_action(page, app, tmp_path):
    page.locator("#wb-instruction textarea").fill("When was Varnholt founded?")
    page.locator("#wb-step-start").click()
    _pause_says(page, "the tool has not run")
    assert page.locator("#wb-timeline .wb-step").count() == 1  # the paused step is shown, its tool not yet run
    box = page.locator("#wb-pause-action textarea")
    box.fill("search[Varnholt]")
    page.locator("#wb-step-next").click()
    _pause_says(page, "the tool answered")
    assert page.locator("#wb-pause-observation textarea").input_value()
    page.locator("#wb-step-next").click()
    _pause_says(page, "Step 2")
    page.screenshot(path=str(tmp_path / "paused.png"), full_page=True)
    page.locator("#wb-stop").click()  # Stop works while the run waits for the person
    _pause_says(page, "The run has ended.")
    run_id = page.locator("#wb-run-id textarea, #wb-run-id input").first.input_value()
    trace = app[1].get_trace(run_id)
    assert trace.stop_reason == "cancelled" and str(trace.steps[0].action) == "search[Varnholt]"


def test_fork_from_here_and_a_click_on_a_token_alternative(page, app):
    page.goto(app[0], wait_until="domcontentloaded")  # a fresh session: nothing left of the stepped run
    page.locator("#wb-instruction textarea").fill("When was Varnholt founded?")
    page.locator("#wb-run").click()
    page.wait_for_function("document.querySelector('#wb-status').innerText.includes('ended:')", timeout=120_000)
    run_id = page.locator("#wb-run-id textarea, #wb-run-id input").first.input_value()
    page.get_by_text("Inspect a step: its exact prompt and raw output").click()
    page.locator("#wb-fork-text textarea").wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#wb-alternatives [role=gridcell]').length > 0", timeout=60_000)
    page.locator("#wb-fork-part").get_by_text("observation", exact=True).click()
    page.locator("#wb-fork-text textarea").fill("Varnholt was founded in 1523.")
    page.locator("#wb-fork").click()
    page.wait_for_function("document.querySelector('#wb-fork-view') && "
                           "document.querySelector('#wb-fork-view').innerText.includes('1523')", timeout=120_000)
    # The view streams while the fork runs; its id arrives with the last update, once the fork is stored.
    page.wait_for_function("(() => { const e = document.querySelector('#wb-fork-id textarea, #wb-fork-id input');"
                           " return e && e.value; })()", timeout=120_000)
    first = page.locator("#wb-fork-id textarea, #wb-fork-id input").first.input_value()
    assert [f["run_id"] for f in app[1].forks_of(run_id)] == [first]
    # A click on an alternative (column "alt 2" of the first token) forks the run at that token.
    page.locator("#wb-alternatives [role=gridcell]").nth(5).click()  # row 0, column 5
    page.wait_for_function(f"(() => {{ const e = document.querySelector('#wb-fork-id textarea, #wb-fork-id input');"
                           f" return e && e.value && e.value !== {first!r}; }})()", timeout=120_000)
    forks = app[1].forks_of(run_id)
    assert len(forks) == 2 and forks[1]["edit"]["part"] == "token" and forks[1]["edit"]["position"] == 0
