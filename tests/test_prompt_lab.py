"""The prompt lab's API: validation messages, versions, dynamic few-shot, trace diffs and comparisons."""

import pytest

from workbench import Agent, load_prompt, load_suite
from workbench.errors import PromptError, StoreError
from workbench.fewshot import ExamplePool, examples_from_tasks
from workbench.models import tiny_model
from workbench.prompt_lab import (Variant, batch_compare, compare_run, delete_version, diff_traces, get_version,
                                  k_sweep, list_versions, prompt_from_yaml, rename_prompt, save_version, text_diff,
                                  validate_prompt)
from workbench.testing import ScriptedModel
from workbench.world import load_tasks


def test_presets_are_valid():
    for name in ("react", "react-paper", "act", "cot", "direct", "react-fever"):
        assert validate_prompt(load_prompt(name)) == []


def test_problems_point_at_the_exact_place():
    p = load_prompt("react")
    p.examples[1].steps[0].action = "google[Sosen Kasfo]"
    p.examples[2].steps[1].thought = "  "
    p.examples[0].steps[-1].action = "search[Lakrea]"
    p.tool_descriptions = {"browse": "x"}
    found = {(x.where, x.message.split(".")[0]) for x in validate_prompt(p)}
    assert ("examples[2].steps[1].action", "Unknown tool 'google' in 'google[Sosen Kasfo]'") in found
    assert any(w == "examples[3].steps[2].thought" for w, _ in found)
    assert any(w == "examples[1].steps[4].action" and "must finish" in m for w, m in
               {(x.where, x.message) for x in validate_prompt(p)})
    assert any(w == "tool_descriptions.browse" for w, _ in found)


def test_a_misspelled_placeholder_in_the_editor_is_a_problem_not_a_crash():
    data = load_prompt("react").to_dict()
    data["user"] = "{examples}\nQuestion: {tsak}"
    problems = validate_prompt(data)
    assert len(problems) == 1 and problems[0].where == "user" and "Did you mean {task}?" in problems[0].message


def test_a_prompt_longer_than_the_context_is_caught():
    lm = tiny_model()
    lm.model.config.max_position_embeddings = 1500  # a small context for the test
    try:
        problems = validate_prompt(load_prompt("react"), model=lm)
    finally:
        lm.model.config.max_position_embeddings = 16384
    assert problems and problems[0].where == "length" and "The longest example is examples[" in problems[0].message


def test_versions_round_trip(store):
    base = load_prompt("react")
    v1 = save_version(store, base, "mine", note="as shipped")
    edited = load_prompt("react").with_examples(2)
    v2 = save_version(store, edited, "mine", note="two examples", parent=v1.id)
    assert [v.id for v in list_versions(store, "mine")] == [v2.id, v1.id]
    assert get_version(store, "mine").id == v2.id and get_version(store, v1.id).hash == base.hash
    assert v2.parent == v1.id and v2.hash != v1.hash and len(get_version(store, v2.id).prompt.examples) == 2
    assert rename_prompt(store, "mine", "ours") == 2 and get_version(store, "ours").id == v2.id
    delete_version(store, v1.id)
    assert [v.id for v in list_versions(store)] == [v2.id]
    with pytest.raises(StoreError, match="No prompt version or name 'nope'. Saved names: ours"):
        get_version(store, "nope")


def test_invalid_prompts_are_not_saved_or_imported(store):
    bad = load_prompt("react")
    bad.examples[0].steps[0].action = "fly[away]"
    with pytest.raises(PromptError, match=r"examples\[1\].steps\[1\].action"):
        save_version(store, bad, "bad")
    assert list_versions(store) == []
    with pytest.raises(PromptError, match="Unknown tool 'fly'"):
        prompt_from_yaml(bad.to_yaml())
    assert prompt_from_yaml(load_prompt("cot").to_yaml()).hash == load_prompt("cot").hash


def test_text_diff():
    assert text_diff("I need to search Varnholt", "I must search Varnholt now") == \
        "I [-need to-] {+must+} search Varnholt {+now+}"


def test_diff_traces_aligns_steps_and_finds_the_divergence(corpus):
    a = Agent(ScriptedModel([" x\nAction: search[Varnholt]", " y\nAction: finish[1312]"]), corpus=corpus).run("q")
    b = Agent(ScriptedModel([" x\nAction: search[Varnholt]", " z\nAction: lookup[founded]", " w\nAction: finish[1312]"]),
              corpus=corpus).run("q")
    steps = diff_traces(a, b)
    assert [d.index for d in steps] == [1, 2, 3] and steps[0].same_action and not steps[1].same_action
    assert steps[2].a is None and steps[2].row()["action_b"] == "finish[1312]"


def test_compare_run_runs_both_variants_and_diffs_their_attribution(corpus, store):
    lm = tiny_model(seed=0)
    short = load_prompt("react").with_examples(1)
    short.name = "react-1"
    cmp = compare_run("When was Varnholt founded?", [Variant("react"), Variant(short)], lm, corpus=corpus,
                      max_steps=2, store=store)
    assert cmp.labels[0].startswith("react@") and cmp.labels[1].startswith("react-1@")
    assert set(cmp.table().columns) >= {"step", "thought_diff", "action_a", "action_b"}
    assert cmp.attribution is not None and "example 2" in set(cmp.attribution["label"])
    assert cmp.attribution.loc[cmp.attribution["label"] == "example 2", "react-1@" + short.hash[:6]].item() == 0.0
    assert {t.meta["variant"] for t in cmp.traces} == set(cmp.labels)
    assert store.count_runs() == 2
    assert set(cmp.outcomes()) == {"answers", "stop_reasons", "steps", "same_answer", "first_divergence"}


def test_batch_compare_reports_differences_and_flipped_tasks(store):
    suite = load_suite("demo:dev", limit=5)
    answers = {t.question: t.answer for t in suite.tasks}
    # A model that answers right only when the prompt has exactly one example.
    model = ScriptedModel(lambda prompt: f" finish[{answers[prompt.split('Question: ')[-1].split(chr(10))[0]]}]"
                          if prompt.count("Question: ") == 2 else " finish[wrong]")
    one = load_prompt("act").with_examples(1)
    one.name = "act-1"
    out = batch_compare(suite, "act", one, model, modes=["act"], store=store)
    assert out["by_mode"]["success_a"].item() == 0.0 and out["by_mode"]["success_b"].item() == 1.0
    assert out["by_mode"]["difference"].item() == 1.0 and len(out["flipped"]) == 5
    assert out["runs"][0] != out["runs"][1]


def test_k_sweep_runs_one_evaluation_per_k(store):
    suite = load_suite("demo:dev", limit=3)
    answers = {t.question: t.answer for t in suite.tasks}
    model = ScriptedModel(lambda prompt: f" finish[{answers[prompt.split('Question: ')[-1].split(chr(10))[0]]}]"
                          if prompt.count("Question: ") > 1 else " finish[?]")
    table = k_sweep(suite, model, [0, 1, 3], mode="act", store=store)
    assert list(table["k"]) == [0, 1, 3] and list(table["success"]) == [0.0, 1.0, 1.0]
    with pytest.raises(Exception, match="k must be between 0 and 3"):
        k_sweep(suite, model, [4], mode="act", store=store)


def test_dynamic_few_shot_picks_the_nearest_examples_and_records_them(corpus):
    tasks = load_tasks("train")[:60]
    pool = ExamplePool.from_tasks(tasks, mode="react")
    picked = pool.nearest(tasks[3].question + " ", k=2)
    assert len(picked) == 2 and tasks[3].question not in [e.question for e in picked]  # never the task itself
    similar = pool.nearest("How many years passed between the birth and the death of Sosen Kasfo?", k=1)[0]
    assert any(word in similar.question for word in ("die", "death", "born", "birth"))  # near in meaning
    agent = Agent(ScriptedModel([" x\nAction: finish[1]"]), corpus=corpus, example_pool=pool, dynamic_examples=2)
    trace = agent.run(tasks[5].question)
    used = trace.meta["examples_used"]
    assert len(used) == 2 and all(f"Question: {q}" in trace.steps[0].prompt for q in used)
    assert examples_from_tasks(tasks[:1], "direct")[0].answer == tasks[0].answer


def test_rename_refuses_to_merge_into_another_prompt(store):
    from workbench.errors import InputError

    save_version(store, load_prompt("react"), "a")
    save_version(store, load_prompt("react").with_examples(1), "b")
    with pytest.raises(InputError, match="Versions named 'b' exist already"):
        rename_prompt(store, "a", "b")
    assert len(list_versions(store, "a")) == 1


def test_batch_compare_refuses_a_prompt_its_modes_never_run(store):
    from workbench.errors import InputError

    with pytest.raises(InputError, match="is a cot prompt.*Pick one of: cot, cot_sc, react_cot_sc, cot_sc_react"):
        batch_compare(load_suite("demo:dev", limit=1), "cot", "cot", ScriptedModel([]), modes=["react"], store=store)


def test_comparing_a_version_with_itself_keeps_two_columns(corpus):
    cmp = compare_run("When was Varnholt founded?", [Variant("react"), Variant("react")], tiny_model(),
                      corpus=corpus, max_steps=1)
    assert cmp.labels[0].startswith("A: ") and cmp.labels[1].startswith("B: ")
    assert set(cmp.labels) <= set(cmp.attribution.columns)


def test_one_resolver_reads_every_form_of_prompt_reference(store, tmp_path):
    from workbench.errors import InputError
    from workbench.prompt_lab import resolve_prompt_ref, saved_version_id

    v = save_version(store, load_prompt("react").with_examples(1), "short", note="one example")
    label = f"saved: short · {v.id} · one example"
    for ref in (f"saved:{v.id}", label, v.id, "short", "saved:short", f"  {v.id} "):
        prompt, vid = resolve_prompt_ref(store, ref)
        assert vid == v.id and len(prompt.examples) == 1, ref
    assert saved_version_id(store, label) == v.id and saved_version_id(store, "short") == "short"
    for ref in ("react", "preset:cot", "preset: cot"):
        prompt, vid = resolve_prompt_ref(store, ref)
        assert vid is None and prompt.name == ref.split(":")[-1].strip()
    path = tmp_path / "mine.yaml"
    path.write_text(load_prompt("act").to_yaml(), encoding="utf-8")
    prompt, vid = resolve_prompt_ref(store, str(path))
    assert vid is None and prompt.hash == load_prompt("act").hash
    with pytest.raises(StoreError, match=r"No prompt version or name 'nope'\. Saved names: short\. Presets: .*react"
                                         r".*a \.yaml file.*preset:NAME / saved:ID"):
        resolve_prompt_ref(store, "nope")
    with pytest.raises(PromptError, match=r"No prompt file .*gone\.yaml\. Export one with `workbench prompt export"):
        resolve_prompt_ref(store, str(tmp_path / "gone.yaml"))
    with pytest.raises(InputError, match="Pick a preset or a saved version. Presets: "):
        resolve_prompt_ref(store, "  ")
