"""The Gradio app, driven through gradio_client against a real server on 127.0.0.1."""

import json
import urllib.error
from pathlib import Path
import urllib.request

import pytest

from workbench.app import build_app
from workbench.app.render import prompt_html, step_html, timeline_html
from workbench.store import Store
from workbench.types import Segment, Step, ToolCall, Trace




@pytest.fixture(scope="module")
def served(serve_app):
    return serve_app("app", concurrency=4)


def test_run_endpoint_streams_a_run_and_stores_it(served, client):
    _, _, store = served
    result = client.predict("When was Varnholt founded?", "react", "tiny", 2, 0.0, api_name="/run")
    timeline, status, table, _plot, _pick, run_id = result[:6]
    assert "wb-step" in timeline and "When was Varnholt founded?" in timeline
    assert "ended: `max_steps`" in status
    assert len(table["data"]) == 2
    trace = store.get_trace(run_id)
    assert trace.task == "When was Varnholt founded?" and len(trace.steps) == 2


def test_history_and_reopen(served, client):
    _, _, store = served
    run_id = client.predict("What is 2 + 3?", "cot", "tiny", 1, 0.0, api_name="/run")[5]
    history = client.predict("2 + 3", api_name="/history")
    assert run_id in [row[0] for row in history["data"]]
    reopened = client.predict(run_id, api_name="/open_run")
    assert reopened[5] == run_id and "What is 2 + 3?" in reopened[0]


def test_bad_input_is_an_error_and_the_app_keeps_serving(served, client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="The instruction is empty"):
        client.predict("   ", "react", "tiny", 2, 0.0, api_name="/run")
    with pytest.raises(AppError, match="No model folder"):
        client.predict("q", "react", "/no/such/model", 2, 0.0, api_name="/run")
    with pytest.raises(AppError, match="No run with id"):
        client.predict("nope", api_name="/open_run")
    assert client.predict("q", "direct", "tiny", 1, 0.0, api_name="/run")[5]


def test_inspect_step_shows_the_exact_prompt(served, client):
    _, _, store = served
    run_id = client.predict("When was Varnholt founded?", "react", "tiny", 2, 0.0, api_name="/run")[5]
    trace = store.get_trace(run_id)
    from workbench.app.run_tab import inspect_step

    html, raw, tokens, fig = inspect_step(trace.to_dict(), "2")
    assert "example 1" in html and "observation 1" in html
    assert raw.startswith("[primer] Thought:")
    (bars,) = fig.data  # one bar per generated token, in order, at the probability the model gave it
    assert fig.layout.title.text.startswith("Step 2:") and bars.type == "bar" and len(bars.x) == len(bars.y) > 0
    assert [x.split(":")[0] for x in bars.x] == [str(i) for i in range(len(bars.x))] and all(0 < p <= 1 for p in bars.y)


def test_file_route_refuses_paths_outside_the_app(served):
    _, url, _ = served
    for path in ("gradio_api/file=/etc/passwd", "file=/etc/passwd", "gradio_api/file=../../../../etc/passwd"):
        try:
            with urllib.request.urlopen(url + path, timeout=10) as resp:
                body = resp.read().decode(errors="replace")
            assert "root:" not in body
        except urllib.error.HTTPError as err:
            assert err.code in (403, 404)


def test_binds_to_loopback_by_default():
    import inspect

    from workbench.app import DEFAULT_HOST, launch

    assert DEFAULT_HOST == "127.0.0.1"
    assert inspect.signature(launch).parameters["host"].default == "127.0.0.1"


def test_render_functions_escape_model_text():
    step = Step(index=1, thought="<script>alert(1)</script>", action=ToolCall("search", "<b>x</b>"),
                observation="a & b", prompt_segments=[Segment("task", "task", "<img src=x onerror=1>", 0, 1)])
    html = step_html(step)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html and "a &amp; b" in html
    assert "<img" not in prompt_html(step)
    assert "No run yet" in timeline_html(None)
    assert timeline_html(Trace(task="t", steps=[step]), running=True).count("wb-step") >= 1


def test_preload_warms_the_model_and_the_shared_prompt_prefix(tmp_path):
    from workbench import generation

    generation.clear_prefix_cache()
    demo = build_app(model="tiny", store=Store(tmp_path / "runs.db"), preload=True)
    assert len(generation.PREFIX_CACHE) == 1
    assert demo.workbench_context.models.get("tiny").name == "tiny-random-0"


def test_evaluate_tab_runs_a_suite_and_compares_two_evaluations(served, client, tmp_path):
    _, _, store = served
    status, agg, _chart, tasks, first = client.predict("demo:dev", None, ["react", "direct"], "tiny", 3, 1,
                                                       api_name="/evaluate")
    assert status.startswith("Done: evaluation") and first.startswith("eval-")
    assert [row[0] for row in agg["data"]] == ["react", "direct"]
    assert len(tasks["data"]) == 6 and len(store.eval_rows(first)) == 6
    upload = tmp_path / "mine.jsonl"
    upload.write_text('{"question": "What is 2 + 3?", "answer": "5"}\n{"question": "What is 3 + 4?", "answer": "7"}\n')
    from gradio_client import handle_file

    _, agg2, _, tasks2, second = client.predict("demo:dev", handle_file(str(upload)), ["direct"], "tiny", 5, 1,
                                                api_name="/evaluate")
    assert len(tasks2["data"]) == 2 and second != first
    table, _fig = client.predict(first, second, api_name="/compare_evals")
    assert "mode" in table["headers"] and len(table["data"]) == 2


def test_a_malformed_upload_is_refused_before_anything_runs(served, client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    before = len(served[2].list_evals())
    with pytest.raises(AppError, match="bad.jsonl:1: field 'answer' is missing"):
        client.predict("demo:dev", handle_file(str(bad)), ["direct"], "tiny", 5, 1, api_name="/evaluate")
    assert len(served[2].list_evals()) == before


def test_attribution_tab_attributes_a_step_and_caches_it(served, client):
    _, _, store = served
    run_id = client.predict("When was Varnholt founded?", "react", "tiny", 2, 0.0, api_name="/run")[5]
    steps, summary = client.predict(run_id, api_name="/attribution_steps")
    assert run_id in summary
    first = client.predict(run_id, "2", "action", "feature_ablation", "segment", [], 8, 32, 32, 16,
                           api_name="/attribute")
    assert "Step 2 · action · feature_ablation" in first[0] and "forward" in first[0]
    assert first[3].endswith(".html")
    again = client.predict(run_id, "2", "action", "feature_ablation", "segment", [], 8, 32, 32, 16,
                           api_name="/attribute")
    assert "from the cache" in again[0]
    assert len(store.list_attributions(run_id)) == 1


def test_attribution_tab_sentence_surrogate_two_levels_text_map_and_dependency_map(served, client):
    run_id = client.predict("When was Varnholt founded?", "react", "tiny", 2, 0.0, api_name="/run")[5]
    out = client.predict(run_id, "2", "action", "surrogate", "sentence", [], 8, 8, 8, 4, api_name="/attribute")
    summary, _heat, bars, html_file, text_map = out[:5]
    assert "surrogate** · sentence features" in summary and "tokens recomputed" in summary
    bar = json.loads(bars["plot"])["data"][0]
    assert "task" in bar["x"] and not any("· s" in x for x in bar["x"])  # the first level: segment totals
    assert text_map.count('class="wb-map-f"') > len(bar["x"])  # the second level: each sentence shaded
    assert "observation 1" in text_map and Path(html_file).read_text(encoding="utf-8").count("wb-map-f") > 0
    plot, table = client.predict(run_id, "feature_ablation", api_name="/attribution_map")
    heat = json.loads(plot["plot"])["data"][0]
    assert heat["y"] == ["step 1", "step 2"] and "task" in heat["x"]
    assert [row[0] for row in table["data"]] == ["step 1", "step 2"]
    # this client's session ran attributions: Stop sets its event (a later one gets a fresh event)
    assert client.predict(api_name="/attribution_stop").startswith("Stopping")


def test_attribution_errors_are_shown_not_raised(served, client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Enter a run id"):
        client.predict("", "1", "action", "feature_ablation", "segment", [], 8, 32, 32, 16, api_name="/attribute")
    with pytest.raises(AppError, match="No run with id"):
        client.predict("nope", api_name="/attribution_steps")


def test_the_wiring_helpers_show_errors_pick_rows_and_name_parameters():
    import inspect

    import gradio as gr
    import pandas as pd

    from workbench.app.wiring import api_params, guard, pick_row
    from workbench.errors import InputError

    @guard
    def handler(run_id, step=1):
        if run_id == "gr":
            raise gr.Error("Pick a step.")
        raise InputError("No run with id 'x'.")

    with pytest.raises(gr.Error, match="No run with id 'x'") as info:
        handler("x")
    assert isinstance(info.value.__cause__, InputError)
    with pytest.raises(gr.Error, match="Pick a step") as info:
        handler("gr")
    assert info.value.__cause__ is None  # a gr.Error passes as it is
    assert list(inspect.signature(handler).parameters) == ["run_id", "step"]

    @guard
    def stream(n):
        yield n
        raise ValueError("late")

    assert inspect.isgeneratorfunction(stream)  # gradio streams only generator functions
    with pytest.raises(gr.Error, match="ValueError: late"):
        list(stream(1))
    table = pd.DataFrame({"id": ["a", "b"], "trace": ["t1", "t2"]})
    assert pick_row("trace")(table, gr.SelectData(None, {"index": [1, 0], "value": "b"})) == "t2"
    assert pick_row("id")(table, gr.SelectData(None, {"index": [5, 0], "value": ""})) == ""
    named = api_params("task", "steps")(lambda *values: values)
    assert list(inspect.signature(named).parameters) == ["task", "steps"] and named(1, 2) == (1, 2)
