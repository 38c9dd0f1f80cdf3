"""Prompt presets as data files, strict rendering, hashes and structured few-shot examples."""

import pytest

from workbench.errors import PromptError, TemplateError
from workbench.prompts import MODES, PromptTemplate, list_presets, load_prompt


def test_every_mode_has_a_preset_and_presets_load():
    names = list_presets()
    for mode in MODES:
        assert mode in names
        assert load_prompt(mode=mode).mode == mode
    assert "react-paper" in names
    for name in names:
        p = load_prompt(name)
        assert p.hash and len(p.hash) == 16


def test_react_examples_are_structured_trajectories():
    p = load_prompt("react")
    assert len(p.examples) >= 2
    for ex in p.examples:
        assert ex.question and ex.steps
        assert ex.steps[-1].action.lower().startswith("finish[")
        assert all(s.thought and s.action for s in ex.steps)


def test_render_gives_one_labelled_segment_per_part():
    p = load_prompt("react")
    system, user = p.render("When was Varnholt founded?", tools_text="- search[entity]: look")
    kinds = [s.kind for s in system + user]
    assert kinds.count("instruction") == 1 and kinds.count("tools") == 1 and kinds.count("task") == 1
    examples = [s for s in user if s.kind == "example"]
    assert [s.label for s in examples] == [f"example {i}" for i in range(1, len(p.examples) + 1)]
    text = "".join(s.text for s in user)
    assert "Question: When was Varnholt founded?" in text
    assert examples[0].text.startswith(f"Question: {p.examples[0].question}\nThought: ")


def test_numbered_style_follows_the_react_paper():
    p = load_prompt("react-paper")
    text = p.render_example(p.examples[0])
    assert "Thought 1: " in text and "Action 1: Search[" in text and "Observation 1: " in text


def test_misspelled_placeholder_fails_and_suggests_the_fix():
    with pytest.raises(TemplateError, match=r"unknown placeholder \{tsak\}. Did you mean \{task\}\? Available"):
        PromptTemplate(name="x", mode="react", instruction="", system="{instruction}", user="Q: {tsak}")


@pytest.mark.parametrize(
    "user,message",
    [
        ("Q: no task here", "must contain {task}"),
        ("Q: {} {task}", "empty placeholder"),
        ("Q: {task!r}", "format spec or conversion"),
        ("Q: {task", "literal brace"),
    ],
)
def test_strict_templates(user, message):
    with pytest.raises(TemplateError, match=message):
        PromptTemplate(name="x", mode="react", instruction="", system="{instruction}", user=user)


def test_literal_braces_are_allowed_when_doubled():
    p = PromptTemplate(name="x", mode="direct", instruction="", system="Use {{json}}", user="{task}")
    system, _ = p.render("t")
    assert system[0].text == "Use {json}"


def test_hash_tracks_content_not_name():
    a = load_prompt("react")
    b = load_prompt("react")
    b.name = "renamed"
    assert a.hash == b.hash
    b.examples[0].steps[0].thought += " (edited)"
    assert a.hash != b.hash


def test_with_examples_keeps_the_first_n():
    p = load_prompt("react")
    assert len(p.with_examples(0).examples) == 0
    assert len(p.with_examples(1).examples) == 1
    assert len(p.examples) >= 2  # the original is untouched
    with pytest.raises(PromptError):
        p.with_examples(-1)


def test_yaml_round_trip(tmp_path):
    p = load_prompt("react")
    path = tmp_path / "mine.yaml"
    path.write_text(p.to_yaml(), encoding="utf-8")
    again = load_prompt(path)
    assert again.hash == p.hash and again.name == p.name


def test_unknown_preset_and_bad_files(tmp_path):
    with pytest.raises(PromptError, match=r"Presets: act, .*\bcot\b.*\breact-tuned\b.*; or pass the path"):
        load_prompt("reactt")
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: react\nsystem: x\n", encoding="utf-8")
    with pytest.raises(PromptError, match="missing field"):
        load_prompt(bad)
    bad.write_text("mode: teleport\nsystem: x\nuser: '{task}'\n", encoding="utf-8")
    with pytest.raises(PromptError, match="unknown mode 'teleport'"):
        load_prompt(bad)
