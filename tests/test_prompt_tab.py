"""The Prompt lab tab: its pure helpers, its endpoints through gradio_client, and a real browser."""

import json
import shutil

import pytest

from workbench.app.prompt_tab import (STEP_COLUMNS, add_example, apply_editor, delete_example, example_view,
                                      move_example, parse_ks, problems_table, resolve_prompt, steps_from_table,
                                      steps_table, sweep_figure, tool_overrides, tools_table, version_choices)
from workbench.app.render import outcomes_markdown, step_diff_html, word_diff_html
from workbench.errors import InputError, StoreError
from workbench.prompt_lab import Problem, save_version
from workbench.prompts import PromptTemplate, load_prompt
from workbench.store import Store
from workbench.tools import default_tools


def _fields(d, index=1):
    """The editor's fields for prompt dict ``d`` showing example ``index``, as the tab lays them out."""
    question, answer, steps = example_view(d, index)
    return [d["name"], d["mode"], d["style"], d["instruction"], d["system"], d["user"],
            tools_table(d.get("tool_descriptions")), index, question, answer, steps]


# ------------------------------------------------------------------ pure helpers


def test_the_editor_round_trips_a_prompt_through_its_tables():
    for preset in ("react", "cot", "react-paper"):
        d = load_prompt(preset).to_dict()
        for i in range(1, len(d["examples"]) + 1):
            assert apply_editor(d, *_fields(d, i)) == d
        assert PromptTemplate.from_dict(apply_editor(d, *_fields(d))).hash == load_prompt(preset).hash


def test_apply_editor_writes_the_shown_example_and_drops_blank_rows():
    d = load_prompt("react").to_dict()
    f = _fields(d, 2)
    steps = f[10].copy()
    steps.loc[0, "thought"] = "I will look this up."
    steps.loc[len(steps)] = ["", "", ""]  # a blank row added in the table
    f[8], f[10] = "Who was born first?", steps
    out = apply_editor(d, *f)
    assert out["examples"][1]["question"] == "Who was born first?"
    assert out["examples"][1]["steps"][0]["thought"] == "I will look this up."
    assert len(out["examples"][1]["steps"]) == len(d["examples"][1]["steps"])
    assert out["examples"][0] == d["examples"][0] and d["examples"][1]["question"] != "Who was born first?"
    # gradio's {"headers", "data"} form and a plain list of lists read the same
    as_dict = {"headers": STEP_COLUMNS, "data": steps.values.tolist()}
    assert steps_from_table(as_dict) == steps_from_table(steps.values.tolist()) == out["examples"][1]["steps"]
    assert list(steps_table(d["examples"][0]).columns) == STEP_COLUMNS


def test_only_changed_tool_descriptions_become_overrides():
    table = tools_table()
    defaults = {t.name: t.description for t in default_tools()}
    assert table["tool"].tolist() == list(defaults) and tool_overrides(table) == {}
    table.loc[table["tool"] == "lookup", "description"] = "Find a keyword in the last article."
    assert tool_overrides(table) == {"lookup": "Find a keyword in the last article."}
    again = tools_table({"lookup": "Find a keyword in the last article.", "nosuch": "x"})
    assert tool_overrides(again) == {"lookup": "Find a keyword in the last article.", "nosuch": "x"}
    d = apply_editor(load_prompt("react").to_dict(), *_fields(load_prompt("react").to_dict())[:6], table,
                     *_fields(load_prompt("react").to_dict())[7:])
    assert d["tool_descriptions"] == {"lookup": "Find a keyword in the last article."}


def test_add_delete_and_move_examples():
    d = load_prompt("react").to_dict()
    questions = [e["question"] for e in d["examples"]]
    added, n = add_example(d)
    assert n == 4 and added["examples"][3]["question"] == "" and len(d["examples"]) == 3
    up, i = move_example(d, 2, -1)
    assert i == 1 and [e["question"] for e in up["examples"]] == [questions[1], questions[0], questions[2]]
    down, i = move_example(d, 3, 1)
    assert i == 3 and [e["question"] for e in down["examples"]] == questions  # the last one stays last
    fewer, show = delete_example(d, 3)
    assert show == 2 and [e["question"] for e in fewer["examples"]] == questions[:2]
    with pytest.raises(InputError, match="No example 7: the prompt has 3"):
        delete_example(d, 7)


def test_versions_resolve_from_labels_values_names_and_ids(tmp_path):
    store = Store(tmp_path / "runs.db")
    v = save_version(store, load_prompt("react").with_examples(1), "short", note="one example")
    choices = version_choices(store)
    assert ("preset: react", "preset:react") in choices
    assert (f"saved: short · {v.id} · one example", f"saved:{v.id}") in choices
    for ref in (f"saved:{v.id}", f"saved: short · {v.id} · one example", v.id, "short"):
        prompt, vid = resolve_prompt(store, ref)
        assert vid == v.id and len(prompt.examples) == 1
    assert resolve_prompt(store, "preset:cot")[0].mode == "cot" and resolve_prompt(store, "react")[1] is None
    with pytest.raises(StoreError, match="No prompt version or name 'nope'"):
        resolve_prompt(store, "nope")


def test_the_step_diff_escapes_model_text():
    row = {"step": 1, "thought_a": "<script>alert(1)</script> look", "thought_b": "look <b>bold</b>",
           "action_a": "search[<img src=x onerror=1>]", "action_b": "search[x]", "observation_a": "a & b",
           "observation_b": "", "same_action": False}
    html = step_diff_html([row], "A: <i>", "B")
    assert "<script>" not in html and "<img" not in html and "<b>bold" not in html and "<i>" not in html
    assert "&lt;script&gt;" in html and "a &amp; b" in html and "wb-diverge" in html
    diff = word_diff_html("the river is long", "the river is short")
    assert "<del" in diff and ">long</del>" in diff and ">short</ins>" in diff
    md = outcomes_markdown({"answers": ("<script>x</script>", "a|b"), "stop_reasons": ("finished", "max_steps"),
                            "steps": (2, 3), "same_answer": False, "first_divergence": 2}, ("A", "B"))
    assert "<script>" not in md and "a&#124;b" in md and "step 2" in md
    assert "Neither run" in step_diff_html([])


def test_ks_problems_and_the_sweep_figure():
    import pandas as pd

    assert parse_ks("0, 1,2 2") == [0, 1, 2]
    with pytest.raises(InputError, match="whole numbers"):
        parse_ks("0,one")
    table = problems_table([Problem("examples[1].question", "empty")])
    assert table.values.tolist() == [["examples[1].question", "empty"]]
    fig = sweep_figure(pd.DataFrame({"k": [0, 1], "success": [0.0, 0.5], "f1": [0.1, 0.6]}))
    assert [t.name for t in fig.data] == ["success", "f1"] and list(fig.data[0].x) == [0, 1]


# ------------------------------------------------------------------ the endpoints, through gradio_client




@pytest.fixture(scope="module")
def served(serve_app):
    return serve_app("prompt-lab", concurrency=4)


def _editor(view):
    """The editor fields out of a /prompt_load (or example) result: view = name ... steps."""
    name, mode, style, instruction, system, user, tools, _pick, shown, question, answer, steps = view
    return [name, mode, style, instruction, system, user, tools, shown, question, answer, steps]


def test_load_a_preset_fills_the_editor(client):
    parent, problems, status, *view = client.predict("preset:react", api_name="/prompt_load")
    assert parent == "" and problems["data"] == [] and "preset **react**" in status
    name, mode, style, instruction, _s, user, tools, pick, shown, question, _a, steps = view
    assert (name, mode, style, shown) == ("react", "react", "plain", 1) and "{task}" in user
    assert [r[0] for r in tools["data"]] == ["search", "lookup", "calculate", "finish"]
    assert [c[1] for c in pick["choices"]] == ["1", "2", "3"]
    assert question == load_prompt("react").examples[0].question and steps["headers"] == STEP_COLUMNS


def test_validate_a_broken_edit_shows_the_exact_place(client):
    view = client.predict("preset:react", api_name="/prompt_load")[3:]
    view = client.predict(*_editor(view), "2", api_name="/prompt_example")  # edits kept, example 2 shown
    fields = _editor(view)
    assert fields[7] == 2
    fields[10]["data"][1][1] = "bogus[Sosen Kasfo]"
    problems, status = client.predict(*fields, "tiny", api_name="/prompt_validate")
    assert "1 problem" in status
    assert problems["data"] == [["examples[2].steps[2].action", problems["data"][0][1]]]
    assert "Unknown tool 'bogus'" in problems["data"][0][1]
    fields[10]["data"][1][1] = "search[Sosen Kasfo]"
    assert client.predict(*fields, "tiny", api_name="/prompt_validate")[1].startswith("No problems")


def test_save_rename_and_delete_versions(served, client):
    store = served[2]
    view = client.predict("preset:react", api_name="/prompt_load")[3:]
    fields = _editor(view)
    fields[10]["data"][0][0] = "First I search Thesnoulith."
    bad = [*fields[:10], {"headers": STEP_COLUMNS, "data": [["", "finish[1]", ""], ["t", "search[x]", ""]]}]
    problems, status = client.predict(*bad, "bad", "", "", "tiny", api_name="/prompt_save")[1:3]
    assert "Not saved" in status and "examples[1].steps[1].action" in [r[0] for r in problems["data"]]
    assert store.prompt_versions("bad") == []
    parent, problems, status, name, source, _a, _b = client.predict(*fields, "react-edited", "first thought",
                                                                     "", "tiny", api_name="/prompt_save")
    assert name == "react-edited" and f"version `{parent}`" in status and "hash `" in status
    saved = store.prompt_version(parent)
    assert saved["note"] == "first thought" and "First I search Thesnoulith." in saved["yaml"]
    label = f"saved: react-edited · {parent} · first thought"
    assert (label, f"saved:{parent}") in [tuple(c) for c in source["choices"]]
    child = client.predict(*fields, "react-edited", "again", parent, "tiny", api_name="/prompt_save")[0]
    assert store.prompt_version(child)["parent"] == parent
    status = client.predict("react-edited", "react-renamed", api_name="/prompt_rename")[0]
    assert "Renamed 2 version(s)" in status and len(store.prompt_versions("react-renamed")) == 2
    assert f"Deleted version `{child}`" in client.predict(f"saved:{child}", api_name="/prompt_delete")[0]
    label = f"saved: react-renamed · {parent} · first thought"
    assert f"Deleted version `{parent}`" in client.predict(label, api_name="/prompt_delete")[0]
    assert store.prompt_versions("react-renamed") == []
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="No prompt version with id 'nope'"):
        client.predict("nope", api_name="/prompt_delete")
    with pytest.raises(AppError, match="No prompt versions are named 'nobody'"):
        client.predict("nobody", "x", api_name="/prompt_rename")


def test_export_and_import_yaml(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    view = client.predict("preset:react", api_name="/prompt_load")[3:]
    path = client.predict(*_editor(view), api_name="/prompt_export")
    assert PromptTemplate.from_yaml(open(path, encoding="utf-8").read()).hash == load_prompt("react").hash
    broken = load_prompt("react").to_dict()
    broken["examples"][0]["steps"][1]["action"] = "fly[away]"
    bad = tmp_path / "broken.yaml"
    bad.write_text(PromptTemplate.from_dict(broken).to_yaml(), encoding="utf-8")
    parent, problems, status, *_ = client.predict(handle_file(str(bad)), api_name="/prompt_import")
    assert "Not imported" in status and problems["data"][0][0] == "examples[1].steps[2].action"
    good = tmp_path / "short.yaml"
    good.write_text(load_prompt("cot").to_yaml(), encoding="utf-8")
    parent, problems, status, name, mode, *_ = client.predict(handle_file(str(good)), api_name="/prompt_import")
    assert "Imported `short.yaml`" in status and mode == "cot" and problems["data"] == []
    not_yaml = tmp_path / "x.yaml"
    not_yaml.write_text("mode: react\nsystem: '{nope}'\nuser: '{task}'\n", encoding="utf-8")
    problems = client.predict(handle_file(str(not_yaml)), api_name="/prompt_import")[1]
    assert "unknown placeholder {nope}" in problems["data"][0][1]
    with pytest.raises(AppError):  # the app keeps serving after a bad export, too
        client.predict("x", "react", "plain", "", "{nope}", "{task}", None, 0, "", "", None, api_name="/prompt_export")


def test_compare_two_versions_stores_both_runs_and_diffs_attribution(served, client):
    store = served[2]
    short = save_version(store, load_prompt("react").with_examples(1), "one-shot")
    outcomes, diff_html, runs, _a, _b, plot, table = client.predict(
        "When was Varnholt founded?", "preset:react", f"saved:{short.id}", "tiny", "tiny", 2, True,
        api_name="/prompt_compare")
    ids = runs.split(", ")
    assert len(ids) == 2 and all(store.get_trace(i).task == "When was Varnholt founded?" for i in ids)
    assert store.get_trace(ids[1]).prompt_hash == short.hash
    assert "wb-step-diff" in diff_html and diff_html.count("wb-diff-row") == 2 and "answer" in outcomes
    headers = table["headers"]
    assert headers[0] == "label" and headers[-1] == "diff" and any(h.startswith("A: react@") for h in headers)
    labels = [r[0] for r in table["data"]]
    (heat,) = json.loads(plot["plot"])["data"]  # a heatmap: rows A, B and B − A, a column per segment
    la, lb = headers[2:4]
    assert heat["type"] == "heatmap" and heat["x"] == labels and heat["y"] == [la, lb, f"{lb} − {la}"]
    assert "example 2" in labels and "task" in labels  # example 2 is only in A: its diff is -A
    same = client.predict("What is 2 + 3?", "preset:react", "preset:react", "tiny", "tiny", 1, False,
                          api_name="/prompt_compare")
    assert "Same answer" in same[0] and same[5] is None and same[6]["data"] == []


def test_batch_compare_and_k_sweep(served, client):
    from gradio_client.exceptions import AppError

    status, by_mode, by_type, flipped = client.predict("demo:dev", 2, "preset:react", "saved:one-shot", "react",
                                                       "tiny", api_name="/prompt_batch_compare")
    assert "demo:dev · 2 tasks" in status and by_mode["headers"] == ["mode", "success_a", "success_b", "difference"]
    assert [r[0] for r in by_mode["data"]] == ["react"] and by_type["data"]
    assert "task_id" in flipped["headers"]
    with pytest.raises(AppError, match="Version A is a react prompt, which the cot mode never uses"):
        client.predict("demo:dev", 2, "preset:react", "preset:cot", "cot", "tiny", api_name="/prompt_batch_compare")
    table, plot = client.predict("demo:dev", 2, "0,1", "preset:react", "tiny", api_name="/prompt_sweep")
    assert [r[0] for r in table["data"]] == [0, 1] and "success" in table["headers"]
    lines = json.loads(plot["plot"])["data"]  # success and F1 against k, the table's figures
    success = [r[table["headers"].index("success")] for r in table["data"]]
    assert [t["name"] for t in lines] == ["success", "f1"] and lines[0]["x"] == [0, 1] and lines[0]["y"] == success
    with pytest.raises(AppError, match="k must be between 0 and 3"):
        client.predict("demo:dev", 2, "0,9", "preset:react", "tiny", api_name="/prompt_sweep")


# ------------------------------------------------------------------ a real browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Debian's chromium is not installed (apt-get install chromium)")
def test_edit_save_and_compare_in_a_real_browser(serve_app, tmp_path):
    from playwright.sync_api import sync_playwright

    store = Store(tmp_path / "runs.db")
    demo, url, _ = serve_app(store=store, concurrency=4)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="Prompt lab").click()
            page.locator("#wb-prompt-load").click()
            page.locator("#wb-prompt-status").get_by_text("Loaded preset").wait_for(timeout=30_000)
            cell = page.locator('#wb-prompt-steps [data-testid="cell-0-0"]')  # example 1, step 1, thought
            for _ in range(3):  # the table may still be re-rendering after the load: edit until the cell holds it
                cell.dblclick()
                editor = cell.locator("textarea, input").first
                editor.wait_for(timeout=10_000)
                editor.fill("I search Thesnoulith <b>first</b>.")  # replaces the cell's text
                editor.press("Enter")
                page.locator("#wb-prompt-status").click()  # leave the table: the edit is committed to its value
                page.wait_for_timeout(500)
                if cell.inner_text().startswith("I search Thesnoulith"):
                    break
            assert cell.inner_text().startswith("I search Thesnoulith <b>first</b>.")  # shown as text, not HTML
            page.locator("#wb-prompt-save-name textarea, #wb-prompt-save-name input").first.fill("react-browser")
            page.locator("#wb-prompt-save").click()
            page.locator("#wb-prompt-status").get_by_text("Saved react-browser as version").wait_for(timeout=30_000)
            version = store.prompt_versions("react-browser")[0]
            assert "I search Thesnoulith <b>first</b>." in version["yaml"]

            page.locator("#wb-prompt-task textarea, #wb-prompt-task input").first.fill("When was Varnholt founded?")
            page.locator("#wb-prompt-b input").click()
            page.get_by_role("option", name=f"saved: react-browser · {version['id']}").click()
            page.locator("#wb-prompt-max-steps input[type=number]").fill("2")
            page.locator("#wb-prompt-compare").click()
            page.locator("#wb-prompt-diff table.wb-step-diff").wait_for(timeout=120_000)
            assert page.locator("#wb-prompt-diff .wb-diff-row").count() >= 1
            assert "thought B" in page.locator("#wb-prompt-diff").inner_text()
            page.locator("#wb-prompt-outcomes").get_by_text("answer").first.wait_for(timeout=30_000)
            page.locator("#wb-prompt-attr-plot .js-plotly-plot").wait_for(timeout=30_000)
            runs = page.locator("#wb-prompt-runs textarea, #wb-prompt-runs input").first.input_value()
            assert len(runs.split(", ")) == 2 and all(store.get_trace(r) for r in runs.split(", "))
            page.screenshot(path=str(tmp_path / "prompt_lab.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
    assert (tmp_path / "prompt_lab.png").stat().st_size > 10_000
