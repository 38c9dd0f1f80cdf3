"""The Fine-tune tab: launch through the server, live status and curves, cancel, preview, export, and a
finished adapter offered as a model in every tab; plus a real browser launching a job."""

from __future__ import annotations

import shutil
import time

import pytest

from workbench.app.finetune_tab import FORM_FIELDS, export_runs, jobs_table, poll_job, preview_html
from workbench.finetune import FineTuneConfig
from workbench.testing import free_port

pytest.importorskip("peft")

SMALL = dict(task="agent", base_model="tiny:3", data="demo:train:arithmetic", eval_data="", method="lora", steps=2,
             learning_rate=1e-3, batch_tokens=4096, grad_accum=1, max_length=4096, weight_decay=0.01, lora_r=4,
             reasoning_weight=1.0, action_weight=1.0, eval_interval=0, probe_interval=0, probe_size=1, seed=0,
             continual_data="", replay_fraction=0.0)


def form(**over):
    values = dict(SMALL, **over)
    return [values[name] for name, *_ in FORM_FIELDS]


@pytest.fixture(scope="module")
def served(serve_app):
    return serve_app("ftapp")  # Gradio's default queue: one event at a time


def _wait_done(ctx, job_id, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, fig, log = poll_job(ctx, job_id)
        if any(w in status for w in ("**done**", "**failed**", "**cancelled**")):
            return status, fig, log
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end: {status}")


def test_form_matches_the_config():
    names = [name for name, *_ in FORM_FIELDS]
    assert set(names) <= set(FineTuneConfig.__dataclass_fields__) and len(names) == len(set(names))


def test_launch_through_the_server_then_curves_and_a_new_model_choice(served):
    from gradio_client import Client

    demo, url, store = served
    ctx = demo.workbench_context
    client = Client(url, verbose=False)
    job_id, *_ = client.predict(*form(), 1, api_name="/finetune_launch")
    assert job_id.startswith("ft-")
    status, fig, log = _wait_done(ctx, job_id)
    assert "**done**" in status and "step 2 / 2" in status, status
    assert {t.name for t in fig.data} >= {"train (weighted sum)", "train: reasoning", "train: action"}
    adapter = store.get_job(job_id)["result"]["adapter_dir"]
    label = f"tiny:3 + LoRA fine-tune {job_id}"  # readable: the job, not the folder's path
    assert label in ctx.models.choices()  # offered in the Run, Evaluate, Attribution and Prompt lab tabs
    assert ctx.models.spec(label) == adapter
    assert ctx.models.get(label).meta["agent_defaults"]["n_examples"] == 0  # and it loads
    assert job_id in set(jobs_table(ctx)["id"])
    assert "base model tiny-random-3" in log and "fine-tune: 100%" in log  # the worker's model line and its bar


def test_a_bad_setting_is_an_error_and_the_app_keeps_serving(served):
    from gradio_client import Client

    demo, url, _ = served
    client = Client(url, verbose=False)
    with pytest.raises(Exception) as err:
        client.predict(*form(steps=0), 1, api_name="/finetune_launch")
    assert "FineTuneConfig.steps" in str(err.value)
    job_id, *_ = client.predict(*form(steps=1), 1, api_name="/finetune_launch")
    assert _wait_done(demo.workbench_context, job_id)[0].startswith("**done**")


def test_cancel_from_the_tab(served):
    from workbench.app.finetune_tab import launch_job
    from workbench.finetune import cancel

    demo, _, store = served
    ctx = demo.workbench_context
    job_id = launch_job(ctx, form(steps=100_000))
    assert cancel(job_id, store)
    status, _, _ = _wait_done(ctx, job_id)
    assert "**cancelled**" in status


def test_preview_and_export(served):
    from workbench.agent import Agent
    from workbench.testing import ScriptedModel

    demo, _, store = served
    ctx = demo.workbench_context
    html = preview_html(ctx, "tiny", "demo:train")
    assert "thought</b> (reasoning loss)" in html and "background:#c7e9c0" in html
    store.save_trace(Agent(ScriptedModel(["Thought: 5.\nAction: finish[5]"])).run("2+3?"))
    path, message = export_runs(ctx)
    assert message.startswith("Wrote 1 trajectories") and path in message
    from workbench.finetune import load_trajectories

    assert load_trajectories(path)[0].question == "2+3?"


CHROMIUM = shutil.which("chromium")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_browser_launches_a_job_and_sees_it_finish(served, tmp_path):
    from playwright.sync_api import sync_playwright

    demo, url, _ = served
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Fine-tune").click()
        for name, value in (("base-model", "tiny:3"), ("data", "demo:train:arithmetic"), ("eval-data", "")):
            box = page.locator(f"#wb-ft-{name} textarea, #wb-ft-{name} input").first
            box.fill(value)
        page.get_by_text("More settings: loss weights, probes, continual learning").click()
        for name, value in (("steps", "2"), ("batch-tokens", "4096"), ("max-length", "4096"), ("probe-size", "1")):
            page.locator(f"#wb-ft-{name} input").first.fill(value)
        page.locator("#wb-ft-launch").click()
        page.wait_for_function("document.querySelector('#wb-ft-status') && "
                               "document.querySelector('#wb-ft-status').innerText.includes('done')", timeout=240_000)
        assert "step 2 / 2" in page.locator("#wb-ft-status").inner_text()
        page.locator("#wb-ft-curves .js-plotly-plot").first.wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "finetune.png"), full_page=True)
        browser.close()


def test_the_app_defaults_to_the_shipped_adapter_with_the_base_one_click_away(tmp_path, monkeypatch):
    import workbench.models as models
    from workbench.app import launch
    from workbench.app.context import EMBEDDED_LABEL
    from workbench.finetune.loop import train

    adapter = train(FineTuneConfig(**dict(SMALL, steps=1, probe="", output_dir=str(tmp_path / "ft"),
                                          max_train_examples=2)), log=lambda _: None).adapter_dir
    monkeypatch.setattr(models, "shipped_adapter", lambda: models.Path(adapter))
    port = free_port()
    demo = launch(port=port, store=tmp_path / "runs.db", preload=False, block=False, quiet=True)
    try:
        registry = demo.workbench_context.models
        assert registry.default == "SmolLM2-135M-Instruct + react LoRA (shipped)"  # a readable name, no path
        assert registry.spec(registry.default) == adapter
        assert registry.choices()[:2] == [registry.default, EMBEDDED_LABEL]
        assert EMBEDDED_LABEL == "SmolLM2-135M-Instruct (base)" and registry.spec(EMBEDDED_LABEL) is None
    finally:
        demo.close()
