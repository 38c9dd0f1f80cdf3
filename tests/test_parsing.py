"""The parser: a golden set of well- and ill-formed completions, stop conditions and answers."""

import json
from pathlib import Path

import pytest

from workbench.errors import ParseError
from workbench.parsing import answer_stop, cut_observation, parse_action, parse_answer, parse_step, react_stop
from workbench.tools import default_tools

GOLDEN = json.loads((Path(__file__).parent / "data" / "parser_golden.json").read_text(encoding="utf-8"))
TOOLS = default_tools()


@pytest.mark.parametrize("case", GOLDEN, ids=[c["name"] for c in GOLDEN])
def test_golden(case):
    parsed = parse_step(case["text"], TOOLS)
    assert parsed.thought == case["thought"]
    assert (parsed.action.name if parsed.action else None) == case["action"]
    assert (parsed.action.argument if parsed.action else None) == case["argument"]
    assert parsed.cut == case["cut"]
    if case["error"] is None:
        assert parsed.error is None
    else:
        assert parsed.error and case["error"] in parsed.error


def test_golden_set_is_large_and_varied():
    assert len(GOLDEN) >= 30
    assert sum(1 for c in GOLDEN if c["error"]) >= 6


def test_errors_list_the_valid_tools():
    for text in ("Thought: hmm", "Thought: x\nAction: google[y]"):
        error = parse_step(text, TOOLS).error
        for name in ("search", "lookup", "calculate", "finish"):
            assert name in error


def test_plain_list_of_tool_names_works_too():
    parsed = parse_step("Action: Finish[yes]", ["search", "finish"])
    assert parsed.ok and parsed.action.name == "finish" and parsed.action.argument == "yes"


def test_thought_end_marks_where_the_action_starts():
    text = "Thought: look it up\nAction: search[X]"
    parsed = parse_step(text, TOOLS)
    assert text[: parsed.thought_end] == "Thought: look it up"


@pytest.mark.parametrize("value", [None, 3, b"bytes"])
def test_non_string_input_does_not_raise(value):
    assert parse_step(value, TOOLS).error  # type: ignore[arg-type]


def test_cut_observation():
    assert cut_observation("Action: search[x]\nObservation 1: y") == ("Action: search[x]", True)
    assert cut_observation("Thought: observational data") == ("Thought: observational data", False)


@pytest.mark.parametrize(
    "text,cut",
    [
        (" I will search.\nAction: search[X]", None),  # the action line is not finished yet
        (" I will search.\nAction: search[X]\n", len(" I will search.\nAction: search[X]")),
        (" x\nAction: search[X]\nObservation: made up", len(" x\nAction: search[X]")),
        (" x\nQuestion: another one", len(" x")),
        (" still thinking", None),
    ],
)
def test_react_stop(text, cut):
    assert react_stop(text) == cut


def test_answer_stop_after_answer_line():
    text = "Thought: 2 and 3 make 5.\nAnswer: 5\nQuestion: next"
    assert text[: answer_stop(text)] == "Thought: 2 and 3 make 5.\nAnswer: 5"


@pytest.mark.parametrize(
    "text,thought,answer",
    [
        ("Thought: 2 and 3 make 5.\nAnswer: 5", "2 and 3 make 5.", "5"),
        ("Answer: Varnholt.", None, "Varnholt"),
        ("Thought: so the answer is 1312.", "so the answer is 1312.", "1312"),
        ("Thought: first\nAnswer: a\nAnswer: b", None, "b"),
        ("Thought: I do not know", "I do not know", None),
        ("FINAL ANSWER: \"Drume\"", None, "Drume"),
    ],
)
def test_parse_answer(text, thought, answer):
    got_thought, got_answer = parse_answer(text)
    assert got_answer == answer
    if thought is not None:
        assert got_thought and thought in got_thought


def test_parse_action_strict():
    assert parse_action("Search[High Plains]", TOOLS).argument == "High Plains"
    with pytest.raises(ParseError, match="Unknown tool 'google'.*Valid tools"):
        parse_action("google[x]", TOOLS)
    with pytest.raises(ParseError, match="not an action"):
        parse_action("   ", TOOLS)
