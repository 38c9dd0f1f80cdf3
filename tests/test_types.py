"""Trace records: exact JSON round trip, file save/load and the step table."""

import json

import pytest

from workbench.types import Segment, Step, Task, ToolCall, Trace


def _trace() -> Trace:
    seg = [Segment("instruction", "instruction", "Solve it.", 0, 3), Segment("task", "task", "Q? ünï", 3, 6)]
    steps = [
        Step(index=1, prompt_segments=seg, primer="Thought:", completion=" x\nAction: search[A]", thought="x",
             action=ToolCall("search", "A", "search[A]"), observation="A is a city.", token_ids=[5, 6],
             tokens=[" x", "\n"], logprobs=[-0.1, -2.0], prompt_tokens=6, prefill_tokens=6, generated_tokens=2,
             t_prefill=0.1, t_decode=0.2, t_tool=0.01, t_total=0.31),
        Step(index=2, action=ToolCall("finish", "A"), answer="A", run_end="finished"),
    ]
    return Trace(task="Q? ünï", mode="react", steps=steps, answer="A", stop_reason="finished", model="m",
                 config={"max_steps": 8}, gold="A", meta={"suite": "demo:dev"})


def test_json_round_trip_is_exact():
    trace = _trace()
    again = Trace.from_json(trace.to_json())
    assert again == trace
    assert isinstance(again.steps[0].action, ToolCall) and isinstance(again.steps[0].prompt_segments[0], Segment)
    assert again.steps[0].prompt == "Solve it.Q? ünï"


def test_save_and_load(tmp_path):
    trace = _trace()
    path = trace.save(tmp_path / "t.json")
    assert Trace.load(path) == trace
    assert not list(tmp_path.glob("*.tmp"))


def test_unknown_fields_from_newer_versions_are_ignored():
    data = json.loads(_trace().to_json())
    data["future_field"] = 1
    data["steps"][0]["another"] = 2
    assert Trace.from_dict(data).steps[0].thought == "x"


def test_dataframe_has_one_row_per_step():
    df = _trace().to_dataframe()
    assert list(df["step"]) == [1, 2]
    assert df.loc[0, "action"] == "search[A]" and df.loc[1, "answer"] == "A"
    assert df.loc[0, "tokens_per_s"] == 10.0
    assert df.loc[0, "mean_logprob"] == pytest.approx(-1.05)


def test_shapes_are_checked_when_built():
    with pytest.raises(ValueError, match="2 token ids but 1 log-probabilities"):
        Step(index=1, token_ids=[1, 2], logprobs=[-0.5])
    with pytest.raises(ValueError, match="Unknown segment kind 'prose'"):
        Segment("prose", "x", "y")


def test_task_round_trip():
    task = Task.from_dict({"id": "t1", "question": "q", "answer": "a", "trajectory": [
        {"thought": "t", "action": "search", "argument": "A", "observation": "o"}]})
    assert Task.from_dict(task.to_dict()) == task and task.trajectory[0].call == "search[A]"
