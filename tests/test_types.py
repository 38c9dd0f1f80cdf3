"""Trace records: exact JSON round trip, file save/load and the step table."""

import json
from typing import get_args

import pytest

from workbench.types import (
    SEGMENT_KINDS,
    STOP_REASONS,
    RunEnd,
    Segment,
    Step,
    StepGeneration,
    Task,
    ToolCall,
    Trace,
)


def _trace() -> Trace:
    seg = [Segment("instruction", "instruction", "Solve it.", 0, 3), Segment("task", "task", "Q? ünï", 3, 6)]
    steps = [
        Step(index=1, prompt_segments=seg, primer="Thought:", completion=" x\nAction: search[A]", thought="x",
             action=ToolCall("search", "A", "search[A]"), observation="A is a city.",
             generation=StepGeneration(token_ids=[5, 6], tokens=[" x", "\n"], logprobs=[-0.1, -2.0], prompt_tokens=6,
                                       prefill_tokens=6, generated_tokens=2, stop="stop_string", t_prefill=0.1,
                                       t_decode=0.2),
             t_tool=0.01, t_total=0.31),
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


# A step as traces stored it before StepGeneration: the generation figures flat on the step.
OLD_SHAPE_STEP = """{"index": 1, "kind": "react", "prompt_segments": [{"kind": "task", "label": "task", "text": "Q?",
 "start": 0, "end": 2}], "primer": "Thought:", "completion": " x", "action_primer": "", "action_completion": "",
 "thought": "x", "action": {"name": "search", "argument": "A", "raw": "search[A]"}, "observation": "A is a city.",
 "opened": "A", "error": null, "error_kind": "", "answer": null, "token_ids": [5, 6], "target_spans": {"thought": [0, 2]},
 "gen_split": -1, "tokens": [" x", "\\n"], "logprobs": [-0.1, -2.0], "prompt_tokens": 6, "reused_tokens": 4,
 "prefill_tokens": 2, "generated_tokens": 2, "draft_tokens": 3, "accepted_tokens": 1, "stop": "stop_string",
 "run_end": "", "t_prefill": 0.1, "t_decode": 0.2, "t_tool": 0.01, "t_total": 0.31, "verifier_score": null}"""


def test_a_trace_stored_with_flat_generation_fields_still_loads():
    old = json.loads(OLD_SHAPE_STEP)
    trace = Trace.from_dict({"task": "Q?", "steps": [old], "stop_reason": "finished"})
    step = trace.steps[0]
    assert step.generation == StepGeneration(token_ids=[5, 6], tokens=[" x", "\n"], logprobs=[-0.1, -2.0],
                                             prompt_tokens=6, reused_tokens=4, prefill_tokens=2, generated_tokens=2,
                                             draft_tokens=3, accepted_tokens=1, stop="stop_string", t_prefill=0.1,
                                             t_decode=0.2)
    assert (step.t_tool, step.t_total, step.thought, step.opened) == (0.01, 0.31, "x", "A")
    assert step.target_spans == {"thought": [0, 2]} and str(step.action) == "search[A]"
    again = step.to_dict()  # it saves in the new shape, which round-trips exactly
    assert "token_ids" not in again and again["generation"]["token_ids"] == [5, 6]
    assert Step.from_dict(json.loads(json.dumps(again))) == step


def test_merging_two_generations_adds_the_work_and_keeps_the_first_prompt():
    thought = StepGeneration(token_ids=[1, 2], tokens=["a", "b"], logprobs=[-1.0, -2.0], prompt_tokens=10,
                             reused_tokens=8, prefill_tokens=2, generated_tokens=2, draft_tokens=1, accepted_tokens=1,
                             stop="stop_string", t_prefill=0.1, t_decode=0.2)
    action = StepGeneration(token_ids=[3], tokens=["c"], logprobs=[-3.0], prompt_tokens=14, reused_tokens=11,
                            prefill_tokens=3, generated_tokens=1, draft_tokens=2, stop="eos", t_prefill=0.05,
                            t_decode=0.1)
    both = thought.merged(action)
    assert both == StepGeneration(token_ids=[1, 2, 3], tokens=["a", "b", "c"], logprobs=[-1.0, -2.0, -3.0],
                                  prompt_tokens=10, reused_tokens=8, prefill_tokens=5, generated_tokens=3,
                                  draft_tokens=3, accepted_tokens=1, stop="eos", t_prefill=0.1 + 0.05,
                                  t_decode=0.2 + 0.1)
    assert thought.token_ids == [1, 2]  # the parts are left as they were


def test_enum_tuples_come_from_the_literal_types():
    assert STOP_REASONS == get_args(RunEnd) and "max_steps" in STOP_REASONS
    assert SEGMENT_KINDS[0] == "scaffold" and "observation" in SEGMENT_KINDS


def test_dataframe_has_one_row_per_step():
    df = _trace().to_dataframe()
    assert list(df["step"]) == [1, 2]
    assert df.loc[0, "action"] == "search[A]" and df.loc[1, "answer"] == "A"
    assert df.loc[0, "tokens_per_s"] == 10.0
    assert df.loc[0, "mean_logprob"] == pytest.approx(-1.05)


def test_shapes_are_checked_when_built():
    with pytest.raises(ValueError, match="2 token ids but 1 log-probabilities"):
        StepGeneration(token_ids=[1, 2], logprobs=[-0.5])
    with pytest.raises(ValueError, match="Unknown segment kind 'prose'"):
        Segment("prose", "x", "y")


def test_task_round_trip():
    task = Task.from_dict({"id": "t1", "question": "q", "answer": "a", "trajectory": [
        {"thought": "t", "action": "search", "argument": "A", "observation": "o"}]})
    assert Task.from_dict(task.to_dict()) == task and task.trajectory[0].call == "search[A]"
