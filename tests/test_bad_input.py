"""Bad input, gathered in one table: each case gets a clear error naming the fix, then the store is
intact and a normal run through the app's handler still works (the app goes on serving).

Each case calls the real API or the app's own handler function (``run_task``, ``run_evaluation``,
the prompt lab's import). Handler errors reach the user as ``gr.Error``; the workbench error that
caused them is checked too. Failures the *model* causes (an action naming no tool, a tool that
raises, an arithmetic bomb in an action) are not exceptions: they are recorded on the step and the
run goes on, so they have their own table below.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

gr = pytest.importorskip("gradio")

from workbench.agent import Agent, validate_task  # noqa: E402
from workbench.app.context import AppContext, ModelRegistry  # noqa: E402
from workbench.app.eval_tab import run_evaluation  # noqa: E402
from workbench.app.run_tab import run_task  # noqa: E402
from workbench.tools.calculator import calculate  # noqa: E402
from workbench.corpus import Corpus, Document  # noqa: E402
from workbench.datasets import load_suite  # noqa: E402
from workbench.errors import (CalculatorError, ConfigError, DatasetError, InputError, ModelLoadError,  # noqa: E402
                              ModelNotFoundError, PromptError, StoreError, TemplateError, ToolError)
from workbench.evaluation import evaluate  # noqa: E402
from workbench.models import tiny_model  # noqa: E402
from workbench.prompt_lab import prompt_from_yaml  # noqa: E402
from workbench.prompts import PromptTemplate, load_prompt  # noqa: E402
from workbench.store import Store  # noqa: E402
from workbench.testing import ScriptedModel  # noqa: E402
from workbench.tools import Toolbox, default_tools, tool  # noqa: E402
from workbench.types import Step, Trace  # noqa: E402


def _respond(prompt: str) -> str:
    """A well-behaved model: answers 'ok' in any mode."""
    return " ok" if prompt.rstrip().endswith("Answer:") else " I know it.\nAction: finish[ok]"


@dataclass
class Env:
    """A running app's context (scripted model, small corpus), its store and a run stored before the case."""

    ctx: AppContext
    store: Store
    seeded: str
    tmp: Path


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory) -> Path:
    lm = tiny_model(seed=5)
    folder = tmp_path_factory.mktemp("tiny-saved") / "tiny"
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def env(tmp_path) -> Env:
    corpus = Corpus([Document("Varnholt", "Varnholt is a city. It was founded in 1312.")], name="mini")
    store = Store(tmp_path / "runs.db")
    seeded = Trace(task="stored before", steps=[Step(index=1, answer="x", run_end="finished")], answer="x",
                   stop_reason="finished")
    store.save_trace(seeded)
    ctx = AppContext(store=store, models=ModelRegistry("scripted"), corpus=corpus)
    ctx.models.add("scripted", ScriptedModel(_respond))  # the registry hands it out like a loaded model
    return Env(ctx, store, seeded.id, tmp_path)


def _drain(result: Any) -> list[Any]:
    return list(result) if hasattr(result, "__next__") else [result]


def _run(env: Env, instruction: Any = "When was Varnholt founded?", mode: str = "react", model: str = "scripted",
         max_steps: float = 4) -> list[tuple]:
    """The Run tab's handler, drained as Gradio would."""
    return _drain(run_task(env.ctx, instruction, mode, model, max_steps, 0.0, session="s"))


def _evaluate(env: Env, upload: str | None, suite: str = "demo:dev") -> list[tuple]:
    return _drain(run_evaluation(env.ctx, suite, upload, ["direct"], "scripted", 5, 1))


def assert_still_serving(env: Env, n_before: int) -> None:
    """The store is intact, nothing was stored by the failed call, and a normal run works and is stored."""
    assert env.store.integrity_check() == "ok"
    assert env.store.get_trace(env.seeded).task == "stored before"
    assert env.store.count_runs() == n_before
    outputs = _run(env)
    run_id = outputs[-1][5]
    trace = env.store.get_trace(run_id)
    assert trace.answer == "ok" and trace.stop_reason == "finished"
    assert env.store.count_runs() == n_before + 1


# ---------------------------------------------------------------- the cases


def _write(env: Env, name: str, content: str | bytes) -> str:
    path = env.tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def _damaged_copy(saved: Path, env: Env, name: str, damage: Callable[[Path], Any]) -> str:
    folder = env.tmp / name
    shutil.copytree(saved, folder)
    damage(folder)
    return str(folder)


_HOTPOT = {"_id": "h1", "question": "Q?", "answer": "A", "type": "bridge", "level": "easy",
           "supporting_facts": [["T", 0]], "context": [["T", ["One.", " Two."]]]}

_PROMPT = load_prompt("react").to_dict()


def _prompt_yaml(**example_step: str) -> str:
    import yaml

    data = json.loads(json.dumps(_PROMPT))
    data["examples"][0]["steps"][0].update(example_step)
    return yaml.safe_dump(data, sort_keys=False)


def _store_newer_schema(env: Env) -> None:
    path = env.tmp / "newer.db"
    Store(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    Store(path)


def _store_corrupt(env: Env) -> None:
    path = env.tmp / "corrupt.db"
    path.write_bytes(b"definitely not SQLite " * 200)
    before = path.read_bytes()
    try:
        Store(path)
    finally:
        assert path.read_bytes() == before  # the damaged file is left for the user to inspect


def _explode_tool(env: Env) -> None:
    @tool
    def explode(x: str) -> str:
        """Always fails."""
        raise RuntimeError("the disk is on fire")

    Toolbox([*default_tools(), explode]).run("explode", "now", context=None)  # type: ignore[arg-type]


@dataclass
class Case:
    name: str
    call: Callable[[Env], Any]  # (env) -> raises
    error: type[BaseException]  # the workbench error (the cause of a handler's gr.Error)
    fix: str  # a regex the message must match: it names the fix


CASES: list[Case] = [
    # -- instructions, through the Run tab's handler
    Case("empty_instruction", lambda e: _run(e, ""), InputError, r"The instruction is empty\. Type a question"),
    Case("whitespace_instruction", lambda e: _run(e, "  \n\t  "), InputError, r"empty\. Type a question"),
    Case("instruction_of_100000_characters", lambda e: _run(e, "x" * 100_000), InputError,
         r"100,000 characters; the limit is 4,000\. Shorten it"),
    Case("only_control_characters", lambda e: _run(e, "\x00\x07\x1b\u200b\x7f"), InputError, r"empty\. Type a question"),
    Case("invalid_utf8_bytes", lambda e: Agent(ScriptedModel(_respond)).run(b"When was \xff\xfe founded?"), InputError,
         r"not valid UTF-8 \(byte 9\); send it as UTF-8"),
    Case("instruction_not_text", lambda e: validate_task(["a", "list"]), InputError, r"must be text, got list"),
    # -- models
    Case("unknown_model_id", lambda e: _run(e, model="no-such-org/no-such-model"), ModelNotFoundError,
         r"download the model elsewhere .* pass the folder path"),
    Case("missing_model_folder", lambda e: _run(e, model=str(e.tmp / "nowhere" / "model")), ModelNotFoundError,
         r"No model folder at .* Check the path"),
    Case("model_folder_without_config", lambda e: _run(e, model=str(e.tmp)), ModelLoadError,
         r"has no config\.json.* Point at the folder that holds config\.json"),
    Case("model_folder_with_corrupt_config", None, ModelLoadError,  # filled in by the test (needs saved_tiny)
         r"incomplete or corrupt.*Download it again, or pass another folder"),
    Case("model_folder_with_corrupt_weights", None, ModelLoadError, r"corrupt or incomplete; download it again"),
    Case("model_folder_without_weights", None, ModelLoadError, r"incomplete or corrupt.*the weights"),
    # -- settings
    Case("unknown_mode", lambda e: _run(e, mode="think"), ConfigError, r"Unknown mode 'think'\. Available: react, cot"),
    Case("max_steps_out_of_range", lambda e: _run(e, max_steps=0), ConfigError, r"max_steps must be between 1 and 50"),
    # -- prompts
    Case("template_without_task_placeholder",
         lambda e: PromptTemplate.from_dict({**_PROMPT, "user": "{examples}\nQuestion:"}), TemplateError,
         r"must contain \{task\}, or the question is never shown"),
    Case("template_with_misspelled_placeholder",
         lambda e: PromptTemplate.from_dict({**_PROMPT, "user": "{examples}\nQuestion: {taks}"}), TemplateError,
         r"Did you mean \{task\}\?"),
    Case("few_shot_example_that_does_not_parse", lambda e: prompt_from_yaml(_prompt_yaml(action="[Varnholt]")),
         PromptError, r"examples\[1\]\.steps\[1\]\.action: .* is not an action\. Write it as tool\[argument\]"),
    Case("few_shot_action_naming_no_tool", lambda e: prompt_from_yaml(_prompt_yaml(action="google[Varnholt]")),
         PromptError, r"examples\[1\]\.steps\[1\]\.action: Unknown tool 'google'.*Valid tools: search"),
    Case("prompt_upload_not_utf8", None, InputError, r"not UTF-8 text \(byte \d+\); save it as UTF-8"),
    # -- tools
    Case("a_tool_that_raises", _explode_tool, ToolError, r"explode failed: RuntimeError: the disk is on fire"),
    Case("unknown_builtin_tool", lambda e: default_tools(["search", "google"]), InputError,
         r"Unknown built-in tool\(s\) \['google'\]\. Available: search, lookup, calculate, finish"),
    # -- arithmetic bombs
    Case("power_tower_9_9_9", lambda e: calculate("9**9**9"), CalculatorError, r"the largest allowed is 1000"),
    Case("big_power", lambda e: calculate("7 ** 999"), CalculatorError, r"digits; the limit is 300"),
    Case("deeply_nested_parentheses", lambda e: calculate("(" * 100 + "1" + ")" * 100), CalculatorError,
         r"more than 40 parentheses; simplify it"),
    Case("deeply_nested_signs", lambda e: calculate("-" * 250 + "1"), CalculatorError,
         r"nested more than 40 levels deep; simplify it"),
    Case("expression_of_10000_characters", lambda e: calculate("1+" * 5000), CalculatorError,
         r"10,000 characters; the limit is 300\. Split it into smaller steps"),
    Case("huge_product", lambda e: calculate("(10 ** 200) * (10 ** 200)"), CalculatorError, r"use smaller numbers"),
    Case("code_instead_of_arithmetic", lambda e: calculate("__import__('os').system('true')"), CalculatorError,
         r"only numbers, \+ - \* / // % \*\* and parentheses.*Example: calculate\["),
    # -- the store
    Case("corrupt_store_file", _store_corrupt, StoreError, r"not a valid SQLite database.*Move the file aside"),
    Case("store_path_under_a_file", lambda e: Store(Path(_write(e, "plain-file", "x")) / "runs.db"), StoreError,
         r"Pass another path with --store PATH or set WORKBENCH_STORE"),
    Case("store_path_is_a_folder", lambda e: Store(e.tmp), StoreError,
         r"cannot be written.*pass a writable path with --store PATH"),
    Case("store_from_a_newer_workbench", _store_newer_schema, StoreError,
         r"newer workbench.*upgrade the workbench or pass another --store PATH"),
    # -- task files and uploads
    Case("hotpotqa_missing_context",
         lambda e: load_suite(f"hotpotqa:{_write(e, 'h.json', json.dumps([{**_HOTPOT, 'context': None}]))}"),
         DatasetError, r"h\.json: record 1: .*context"),
    Case("hotpotqa_not_json", lambda e: load_suite("hotpotqa:" + _write(e, "h.json", '[{"_id": "a",')),
         DatasetError, r"h\.json: not valid JSON at line 1"),
    Case("hotpotqa_bad_supporting_facts",
         lambda e: load_suite(f"hotpotqa:{_write(e, 'h.json', json.dumps([{**_HOTPOT, 'supporting_facts': 3}]))}"),
         DatasetError, r"record 1: 'supporting_facts' must be a list of \[title, sentence_id\] pairs"),
    Case("hotpotqa_upload_in_the_app",
         lambda e: _evaluate(e, _write(e, "upload.json", json.dumps([{k: v for k, v in _HOTPOT.items()
                                                                       if k != "context"}]))),
         DatasetError, r"upload\.json: record 1: field 'context' is missing; every HotpotQA record needs"),
    Case("upload_not_utf8", lambda e: _evaluate(e, _write(e, "latin.jsonl", b'{"question": "Caf\xe9?"}\n')),
         DatasetError, r"latin\.jsonl: not UTF-8 text.*save the file as UTF-8"),
    Case("upload_over_the_size_limit",
         lambda e: _evaluate(e, _write(e, "big.jsonl", '{"question": "q", "answer": "a"}\n' * 330_000)),
         InputError, r"the app accepts up to 10 MB\. Evaluate a bigger file from the command line: workbench eval"),
    Case("unknown_suite_spec", lambda e: _evaluate(e, None, suite="nope:x"), InputError,
         r"Unknown suite spec 'nope:x'\. Valid forms: demo:SPLIT"),
    Case("unknown_evaluation_mode", lambda e: evaluate("demo:dev", ["reakt"], ScriptedModel(_respond), store=e.store),
         InputError, r"Available: react, cot, act, direct, cot_sc"),
]


def _late_calls(saved_tiny: Path) -> dict[str, Callable[[Env], Any]]:
    """Cases that need the saved tiny model folder or the prompt tab (built per test)."""
    from workbench.app.prompt_tab import _import

    return {
        "model_folder_with_corrupt_config": lambda e: _run(e, model=_damaged_copy(
            saved_tiny, e, "bad-config", lambda f: (f / "config.json").write_text("{not json"))),
        "model_folder_with_corrupt_weights": lambda e: _run(e, model=_damaged_copy(
            saved_tiny, e, "bad-weights", lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64))),
        "model_folder_without_weights": lambda e: _run(e, model=_damaged_copy(
            saved_tiny, e, "no-weights", lambda f: (f / "model.safetensors").unlink())),
        "prompt_upload_not_utf8": lambda e: _import(_write(e, "mine.yaml", b"name: caf\xe9\n")),
    }


def test_the_table_has_at_least_25_cases_with_distinct_names():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_names_the_fix_and_the_app_goes_on(case: Case, env: Env, saved_tiny: Path):
    call = case.call or _late_calls(saved_tiny)[case.name]
    n_before = env.store.count_runs()
    with pytest.raises(Exception) as info:
        call(env)
    err = info.value
    if isinstance(err, gr.Error):  # a handler: the user sees err.message; the cause is the workbench's error
        message, cause = str(err.message), err.__cause__
    else:
        message, cause = str(err), err
    assert isinstance(cause, case.error), f"{type(cause).__name__}: {message}"
    assert re.search(case.fix, message, re.DOTALL), message
    assert_still_serving(env, n_before)


# ---------------------------------------------------------------- what the model causes: recorded, never raised

STEP_CASES = [
    # (name, the model's first completion(s), what the first step's error must say)
    ("model_action_naming_no_tool", " I will google it.\nAction: google[Varnholt]",
     r"Unknown tool 'google'\. Valid tools: search\[\.\.\.\], lookup\[\.\.\.\], calculate\[\.\.\.\], finish\[\.\.\.\]"),
    ("model_step_without_action", [" I am only thinking.", " "], r"No action found\. Write the next step as 'Action: tool"),
    ("model_unreadable_action", " x\nAction: ???", r"Could not read the action .* Write it as tool\[argument\]"),
    ("model_power_tower", " x\nAction: calculate[9**9**9]", r"largest allowed is 1000"),
    ("model_nested_parentheses", " x\nAction: calculate[" + "(" * 80 + "1" + ")" * 80 + "]", r"simplify it"),
    ("model_code_in_calculate", " x\nAction: calculate[__import__('os').system('touch /tmp/pwned')]",
     r"only numbers.*not a function call"),
    ("model_lookup_before_search", " x\nAction: lookup[population]", r"search for an entity first"),
]


@pytest.mark.parametrize("name, first, error", STEP_CASES, ids=[c[0] for c in STEP_CASES])
def test_what_the_model_does_wrong_is_an_observation_and_the_run_goes_on(env, name, first, error):
    script = iter(first if isinstance(first, list) else [first])
    env.ctx.models.add("scripted", ScriptedModel(lambda p: next(script, None) or _respond(p)))
    n_before = env.store.count_runs()
    trace = env.store.get_trace(_run(env)[-1][5])
    step = trace.steps[0]
    assert step.error and re.search(error, step.error), step.error
    assert step.observation and step.observation.endswith(step.error)  # the model is shown what to fix
    assert trace.answer == "ok" and trace.stop_reason == "finished"  # and the run went on to its answer
    assert env.store.count_runs() == n_before + 1 and env.store.integrity_check() == "ok"


def test_a_user_tool_that_raises_is_an_observation(env):
    @tool
    def explode(x: str) -> str:
        """Always fails."""
        raise MemoryError("no room")

    model = ScriptedModel([" x\nAction: explode[now]", " y\nAction: finish[ok]"])
    trace = Agent(model, corpus=env.ctx.corpus, tools=Toolbox([*default_tools(), explode])).run("q")
    assert trace.steps[0].error == "explode failed: MemoryError: no room" and trace.answer == "ok"


def test_control_characters_inside_an_instruction_are_removed_and_the_run_goes_on(env):
    trace = env.store.get_trace(_run(env, "When\x00 was\x1b Varnholt\u200b\udcff founded?\x7f")[-1][5])
    assert trace.task == "When was Varnholt founded?" and trace.answer == "ok"


# ---------------------------------------------------------------- cancelling and running out of memory


class _CancelAfter(threading.Event):
    """A cancel flag that turns itself on at its n-th check: a Stop press in the middle of a step."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        if self.left == 0:
            self.set()
        return super().is_set()


def test_cancelling_in_the_middle_of_a_step_stops_it_and_leaves_the_next_run_unchanged(env, tiny):
    agent = Agent(tiny, corpus=env.ctx.corpus, mode="direct", max_new_tokens=64, lookahead=0)
    before = agent.run("When was Varnholt founded?")
    assert before.steps[0].generation.generated_tokens > 12  # long enough to be stopped half-way
    cancel = _CancelAfter(6)
    stopped = agent.run("When was Varnholt founded?", cancel=cancel)
    step = stopped.steps[0]
    assert step.generation.stop == "cancelled" and stopped.stop_reason == "cancelled"
    assert 0 < step.generation.generated_tokens < before.steps[0].generation.generated_tokens
    assert step.generation.token_ids == before.steps[0].generation.token_ids[:len(step.generation.token_ids)]  # what it had so far, unchanged
    env.store.save_trace(stopped)
    assert env.store.get_trace(stopped.id).stop_reason == "cancelled"
    after = agent.run("When was Varnholt founded?")  # the shared prompt cache was not damaged by the stop
    assert after.steps[0].generation.token_ids == before.steps[0].generation.token_ids


def test_stop_in_the_app_cancels_only_that_sessions_run(env):
    started = threading.Event()
    release = threading.Event()

    def slow(prompt: str) -> str:
        started.set()
        release.wait(10)
        return " searching.\nAction: search[Varnholt]"

    env.ctx.models.add("slow", ScriptedModel(slow))
    outputs: list = []
    runner = threading.Thread(target=lambda: outputs.extend(
        run_task(env.ctx, "When was Varnholt founded?", "react", "slow", 5, 0.0, session="A")))
    runner.start()
    assert started.wait(10)
    assert not env.ctx.cancel("B")  # another session's Stop touches nothing of A's
    assert env.ctx.cancel("A")
    release.set()
    runner.join(20)
    trace = env.store.get_trace(outputs[-1][5])
    # the step under way is kept and marked; its tool never runs once Stop was pressed
    assert trace.stop_reason == "cancelled" and len(trace.steps) == 1 and trace.steps[0].run_end == "cancelled"
    assert not trace.steps[0].observation
    assert "cancelled" in outputs[-1][1]
    assert_still_serving(env, env.store.count_runs())


class _OOMSession:
    """A session whose second generation runs out of device memory."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        self.calls += 1
        if self.calls == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.inner.generate(*args, **kwargs)


class _OOMModel(ScriptedModel):
    def new_session(self):
        return _OOMSession(super().new_session())


def test_out_of_memory_on_the_device_is_a_clear_message_and_the_app_goes_on(env):
    env.ctx.models.add("oom", _OOMModel([" x\nAction: search[Varnholt]"]))
    n_before = env.store.count_runs()
    outputs = _drain(run_task(env.ctx, "When was Varnholt founded?", "react", "oom", 5, 0.0, session="s"))
    trace = env.store.get_trace(outputs[-1][5])
    assert trace.stop_reason == "error" and trace.steps[0].observation.startswith("Varnholt is a city")
    halt = trace.steps[-1]
    assert halt.kind == "halt" and re.search(r"Out of memory on the device.*Try a smaller model", halt.error)
    assert "ended: `error`" in outputs[-1][1]
    assert_still_serving(env, n_before + 1)


def test_the_run_tab_says_ended_only_once_the_run_is_stored(env):
    """A browser (or a test) that sees "ended:" may open the run in History or fork it at once."""
    stored_when_shown = []
    for out in run_task(env.ctx, "When was Varnholt founded?", "react", "scripted", 4, 0.0, session="s"):
        if "ended:" in out[1]:
            stored_when_shown.append(env.store.get_trace(out[5]).stop_reason)
    assert stored_when_shown == ["finished"]


def test_out_of_memory_while_loading_a_model_names_the_fix(env, monkeypatch):
    import torch

    from workbench.app import context

    def no_room(spec):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 300.00 GiB")

    monkeypatch.setattr(context, "load_model", no_room)
    with pytest.raises(gr.Error) as info:
        _run(env, model="huge-org/huge-model")
    assert isinstance(info.value.__cause__, ModelLoadError)
    assert re.search(r"Out of memory while loading .* Pick a smaller model", str(info.value.message))
    monkeypatch.undo()
    assert_still_serving(env, env.store.count_runs())


def test_a_store_that_breaks_while_the_app_runs_loses_only_that_save(env, monkeypatch):
    def broken(trace, tags=""):
        raise StoreError("The run store x cannot be written (disk I/O error). Check its permissions.")

    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda text, *a, **k: warnings.append(text))
    monkeypatch.setattr(env.store, "save_trace", broken)
    outputs = _run(env)
    assert outputs[-1][6]["answer"] == "ok"  # the run is still shown
    assert warnings and "could not be saved" in warnings[0] and "Check its permissions" in warnings[0]
    monkeypatch.undo()
    assert_still_serving(env, env.store.count_runs())


def test_workbench_run_refuses_a_prompt_file_with_an_example_that_does_not_parse(env, capsys):
    from workbench.cli import main

    bad = _write(env, "mine.yaml", _prompt_yaml(action="[Varnholt]"))
    db = str(env.tmp / "runs.db")
    assert main(["--store", db, "run", "When was Varnholt founded?", "--model", "tiny", "--prompt", bad]) == 2
    err = capsys.readouterr().err
    assert re.search(r"examples\[1\]\.steps\[1\]\.action: .* is not an action\. Write it as tool\[argument\]", err)
    assert "Loading model" not in err  # refused before anything loads or runs
    assert main(["--store", db, "run", "q", "--model", "tiny", "--prompt", str(env.tmp / "none.yaml")]) == 2
    assert "workbench prompt export react --out" in capsys.readouterr().err
    assert_still_serving(env, env.store.count_runs())
