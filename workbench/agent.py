"""The ReAct agent: a model writes Thought -> Action, a tool writes the Observation, until it finishes.

``Agent.stream(task)`` yields the run's growing Trace each time a step completes (the new step is
``trace.steps[-1]``; the last value is finalised); ``Agent.run(task)`` is that last value. Whatever
the model writes, the run goes on: an unreadable step or a failing tool becomes an error
observation; a repeated action forces a final answer; ``max_steps`` ends the run with that reason.

This module decides what happens next (which tool, a repeat, the verifier, why the run ends);
writing each step from a generation (primer, parse, token spans) is steps.py's StepWriter.

    >>> from workbench.testing import ScriptedModel
    >>> agent = Agent(ScriptedModel(["Thought: add.\\nAction: calculate[2+3]", "Thought: 5.\\nAction: finish[5]"]))
    >>> [str(trace.steps[-1].action) for trace in agent.stream("What is 2 + 3?")]
    ['calculate[2+3]', 'finish[5]']
"""

from __future__ import annotations

import hashlib
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Iterator

from .corpus import Corpus
from .errors import ConfigError, InputError, ToolError
from .generation import ContextFull, DecodeSession, GenerationConfig, LanguageModel, Session
from .naive import NaiveSession
from .parsing import ParsedStep
from .prompts import MODES, Example, PromptTemplate, load_prompt, step_labels
from .replay import Gate, Replay, one_line, replace_action
from .steps import StepWriter
from .tools.core import FINISH, Toolbox, ToolContext, default_tools
from .types import Step, Trace

if TYPE_CHECKING:
    from .fewshot import ExamplePool
    from .models import LoadedModel

__all__ = ["Agent", "AgentConfig", "validate_task", "MAX_TASK_CHARS"]

MAX_TASK_CHARS = 4000


@dataclass
class AgentConfig:
    """Settings of one agent; every field is recorded on each Trace it produces."""

    mode: str = "react"  # react | cot | act | direct
    max_steps: int = 8  # steps before the run ends with stop_reason "max_steps"
    max_new_tokens: int = 128  # generated tokens per step
    temperature: float = 0.0  # 0 = greedy
    top_k: int = 0  # sampling only; 0 = off
    top_p: float = 1.0  # sampling only; 1 = off
    seed: int | None = None  # sampling seed
    n_examples: int | None = None  # few-shot examples to keep (None = all the prompt has)
    max_observation_chars: int = 600  # longer observations are cut with an ellipsis
    retrieval: str = "bm25"  # how search ranks documents: bm25 | dense | hybrid
    chat_template: bool = True  # wrap the prompt in the model's chat template when it has one
    reuse_cache: bool = True  # False: regenerate from the whole prompt at every step (the naive baseline)
    share_prefix: bool = True  # reuse the keys / values of the prompt before the task across runs
    lookahead: int = 8  # greedy: draft up to this many tokens from the context per forward pass (0 = off)
    dynamic_examples: int = 0  # > 0: use the k pool examples nearest to the task instead of the prompt's own
    verifier: str = ""  # folder of a trained answer verifier: a finish no observation supports is refused once ("" = off)
    verifier_threshold: float = 0.5  # the verifier's support below which a finish is refused
    forced_thought: bool = True  # react: after a loop, one thought line before the forced finish[ (False: finish[ at once)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"Unknown mode {self.mode!r}. Available: {', '.join(MODES)}.")
        if not 1 <= self.max_steps <= 50:
            raise ConfigError(f"max_steps must be between 1 and 50, got {self.max_steps}.")
        if not 50 <= self.max_observation_chars <= 20_000:
            raise ConfigError(f"max_observation_chars must be between 50 and 20000, got {self.max_observation_chars}.")
        if self.retrieval not in ("bm25", "dense", "hybrid"):
            raise ConfigError(f"Unknown retrieval {self.retrieval!r}. Available: bm25, dense, hybrid.")
        if not 0.0 <= self.verifier_threshold <= 1.0:
            raise ConfigError(f"verifier_threshold must be between 0 and 1, got {self.verifier_threshold}.")
        self.generation  # validates temperature, top_p, top_k, max_new_tokens

    @property
    def generation(self) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_k=self.top_k,
                                top_p=self.top_p, seed=self.seed, lookahead=self.lookahead)


def validate_task(task: Any, max_chars: int = MAX_TASK_CHARS) -> str:
    """The instruction, cleaned of control characters, or an InputError that says what to fix."""
    if isinstance(task, bytes):
        try:
            task = task.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"The instruction is not valid UTF-8 (byte {err.start}); send it as UTF-8 text.") from err
    if not isinstance(task, str):
        raise InputError(f"The instruction must be text, got {type(task).__name__}.")
    cleaned = "".join(ch for ch in task if ch in "\n\t" or unicodedata.category(ch)[0] != "C" or ch == " ")
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8").strip()
    if not cleaned:
        raise InputError("The instruction is empty. Type a question, e.g. 'When was Varnholt founded?'.")
    if len(cleaned) > max_chars:
        raise InputError(
            f"The instruction has {len(cleaned):,} characters; the limit is {max_chars:,}. Shorten it, or put long "
            "material in the knowledge corpus and ask about it."
        )
    return cleaned


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class Agent:
    """Runs tasks with a model, a prompt, tools and a corpus. Safe to share across threads.

    ``model`` is a LoadedModel (from ``load_model``) or any LanguageModel (a ``name`` and
    ``new_session()``) such as ScriptedModel. ``corpus`` defaults to the demo world's encyclopedia.
    Keyword arguments override fields of ``config``: ``Agent(lm, mode="cot", max_steps=4)``.
    """

    def __init__(self, model: LanguageModel | LoadedModel, corpus: Corpus | None = None, tools: Toolbox | None = None,
                 prompt: PromptTemplate | str | None = None, config: AgentConfig | None = None,
                 example_pool: ExamplePool | None = None, **overrides: Any) -> None:
        try:
            self.config = replace(config or AgentConfig(), **overrides)
        except TypeError as err:
            fields = ", ".join(AgentConfig.__dataclass_fields__)
            raise ConfigError(f"{err}. AgentConfig fields: {fields}.") from err
        self.model = model
        self._corpus = corpus
        mode = self.config.mode
        tuned = (getattr(model, "meta", None) or {}).get("agent_defaults") or {}
        if tuned and mode == "react":  # a fine-tuned model runs with the prompt it was trained on
            if self.config.n_examples is None and isinstance(tuned.get("n_examples"), int):
                self.config = replace(self.config, n_examples=tuned["n_examples"])
            prompt = prompt if prompt is not None else tuned.get("prompt")
        if isinstance(prompt, PromptTemplate):
            template = prompt
        else:
            template = load_prompt(prompt, mode=mode)
        if template.mode != mode:
            raise ConfigError(f"Prompt {template.name!r} is for mode {template.mode!r}, but the agent runs {mode!r}. "
                              f"Pass mode={template.mode!r} or a {mode} prompt.")
        self.prompt = template.with_examples(self.config.n_examples)
        self.tools = tools or default_tools()
        self.example_pool = example_pool  # for dynamic_examples; None: the demo world's train split
        self._picked: dict[str, list] = {}  # task -> the examples picked for it (the same for trace and session)
        if mode in ("react", "act") and FINISH not in self.tools:
            raise ConfigError("The toolbox has no 'finish' tool, so a react run could never end with an answer.")
        self.verifier = None
        if self.config.verifier:  # loaded now, so a wrong folder fails here and not inside a run
            from .verifier import Verifier

            self.verifier = Verifier.shared(self.config.verifier)

    # ------------------------------------------------------------------ setup
    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            from .world.generate import load_world

            self._corpus = load_world().corpus
        return self._corpus

    @property
    def model_name(self) -> str:
        return str(getattr(self.model, "name", type(self.model).__name__))

    def _new_session(self) -> Session:
        if hasattr(self.model, "new_session"):
            return self.model.new_session()
        return (DecodeSession if self.config.reuse_cache else NaiveSession)(self.model)

    def open_session(self, task: str) -> Session:
        """A new session with the rendered prompt of ``task`` fed (wrapped in the chat template)."""
        session = self._new_session()
        self._open(session, validate_task(task))
        return session

    def examples_for(self, task: str) -> list[Example]:
        """The few-shot examples of ``task``: the prompt's own, or the k nearest from the pool."""
        k = self.config.dynamic_examples
        if k <= 0:
            return self.prompt.examples
        if task not in self._picked:
            from .fewshot import default_pool

            pool = self.example_pool or default_pool(self.config.mode)
            self._picked[task] = pool.nearest(task, k)
        return self._picked[task]

    def _open(self, session: Session, task: str) -> None:
        """Feed the rendered prompt, wrapped in the model's chat template when it has one."""
        style = "numbered" if self.prompt.style == "numbered" else "plain"
        prompt = self.prompt
        if self.config.dynamic_examples > 0:
            prompt = replace(self.prompt, examples=self.examples_for(task))
        system, user = prompt.render(task, self.tools.describe(style, prompt.tool_descriptions))
        tokenizer = getattr(self.model, "tokenizer", None)
        parts = _chat_parts(tokenizer) if self.config.chat_template and tokenizer is not None else None
        if parts is None:
            parts = ("", "\n\n", "\n")
        before, between, after = parts
        for text, segs in ((before, system), (between, user)):
            if text:
                session.feed(text, "scaffold", "chat")
            for seg in segs:
                shared = self.config.share_prefix and not self.config.dynamic_examples  # picked examples vary
                if seg.kind == "task" and shared and hasattr(session, "mark_shared_prefix"):
                    session.mark_shared_prefix()  # all before the task is the same for every task
                session.feed(seg.text, seg.kind, seg.label)
        session.feed(after, "scaffold", "chat")

    def new_trace(self, task: str, **meta: Any) -> Trace:
        source = getattr(self.model, "source", "")  # how to load the same model again (attribution needs it)
        meta = {"model_source": source, **meta} if source else dict(meta)
        if self.config.dynamic_examples > 0:
            meta["examples_used"] = [e.question for e in self.examples_for(task)]
        corpus = self._corpus_or_none() if self.config.mode in ("react", "act") else None
        if corpus is not None and "corpus" not in meta:  # which knowledge the run searched, by name and content
            meta["corpus"] = {"name": corpus.name, "hash": corpus.fingerprint, "documents": len(corpus)}
        return Trace(task=task, mode=self.config.mode, model=self.model_name, prompt_name=self.prompt.name,
                     prompt_hash=self.prompt.hash, config=asdict(self.config), meta=meta)

    # ------------------------------------------------------------------ running
    def run(self, task: str, cancel: threading.Event | None = None, *, replay: Replay | None = None,
            gate: Gate | None = None, **meta: Any) -> Trace:
        """Run a task to the end and return its Trace: the last value of :meth:`stream`."""
        trace = None
        for trace in self.stream(task, cancel=cancel, replay=replay, gate=gate, **meta):
            pass
        assert trace is not None  # _steps always yields at least the step that ends the run
        return trace

    def stream(self, task: str, cancel: threading.Event | None = None, *, replay: Replay | None = None,
               gate: Gate | None = None, **meta: Any) -> Iterator[Trace]:
        """The one streaming entry point: yield the run's Trace each time a step completes.

        The new step is ``trace.steps[-1]``; the trace is the same object throughout, and the last value
        is finalised (answer, stop reason, hashes). ``meta`` goes to the trace (``task_id=...``).
        ``replay``: write the first steps from a parent run and change one (a fork, see interventions.fork);
        ``gate``: a person may replace each action before its tool runs and each observation (step by step)."""
        t0 = time.perf_counter()
        task = validate_task(task)
        trace = self.new_trace(task, **meta)
        for step in self._steps(task, cancel, replay, gate, trace.id):
            trace.steps.append(step)
            trace.wall_time = time.perf_counter() - t0
            if step.run_end:
                self.finalize(trace, trace.wall_time)
            yield trace

    @staticmethod
    def finalize(trace: Trace, wall_time: float) -> Trace:
        """Fill answer, stop reason and hashes from the steps of a finished stream."""
        trace.wall_time = wall_time
        last = trace.steps[-1] if trace.steps else None
        trace.answer = last.answer if last else None
        trace.stop_reason = (last.run_end if last else "") or "error"
        if trace.steps:
            trace.rendered_hash = hashlib.sha256(trace.steps[0].prompt.encode()).hexdigest()[:16]
        return trace

    def _steps(self, task: str, cancel: threading.Event | None = None, replay: Replay | None = None,
               gate: Gate | None = None, run_id: str = "") -> Iterator[Step]:
        """Yield each Step as soon as it is complete; the last one has ``run_end`` set."""
        try:
            session = self.open_session(task)
            if replay is not None:
                replay.prepare(session)
            writer = StepWriter(session, self.config.generation, cancel)
            if self.config.mode in ("react", "act"):
                yield from self._react(writer, replay, gate, task)
            else:  # cot / direct: one step that reasons (cot) and answers
                yield writer.answer(self.config.mode, self.prompt.answer_prefix)
            if run_id and hasattr(session, "keep_for"):  # a fork of this run can start from its keys / values
                session.keep_for(run_id)
        except ContextFull as err:
            yield Step(index=0, kind="halt", error=f"The prompt reached the model's context length: {err}",
                       run_end="context_full")
        except Exception as err:  # a failure of the model or a tool's machinery must not end the caller
            yield Step(index=0, kind="halt", error=_explain(err), run_end="error")

    def _react(self, writer: StepWriter, replay: Replay | None = None, gate: Gate | None = None,
               task: str = "") -> Iterator[Step]:
        """react / act: Thought -> Action -> Observation steps until finish, a repeat or ``max_steps``."""
        cfg, session = self.config, writer.session
        ctx = ToolContext(corpus=self._corpus_or_none(), retrieval=cfg.retrieval, task=task)
        previous: tuple[str, str] | None = None
        seen: list[str] = []  # the run's tool observations, for the verifier
        refused = False  # the verifier refuses at most one finish per run, so every run still ends
        for i in range(1, cfg.max_steps + 1):
            if replay is not None and replay.covers(i):
                step, parsed, text = replay.write(i, writer, cfg.mode, self.prompt.style, self.tools)
            else:
                step, parsed, text = writer.react(i, cfg.mode, self.prompt.style, self.tools)
            if gate is not None and step.generation.stop != "cancelled":
                edited = gate.action(step)  # the person sees the thought and action; the tool has not run
                if edited is not None and edited.strip() and edited.strip() != str(step.action or ""):
                    step, parsed, text = replace_action(writer, step, edited, self.prompt.style, self.tools)
            if step.generation.stop == "cancelled" or (writer.cancel is not None and writer.cancel.is_set()):
                step.run_end = "cancelled"
                yield step
                return
            call = (parsed.action.name, parsed.action.argument.lower()) if parsed.action else None
            # The same action again is a loop, except a lookup that still has further results to give
            # (after "No more results." the same lookup only says that again). Like any loop it is pointed
            # out once (the tool runs, and the loop guard notes its observation was seen) and ends the run
            # the next time.
            repeated = call == previous and parsed.action is not None and (
                parsed.action.name != "lookup" or ctx.exhausted) and ctx.noticed
            ctx.thought = parsed.thought or ""  # the tools' loop guard: a repeated thought or observation
            self._act(parsed, step, ctx, repeated)
            if ctx.loop == "force" and step.error_kind in ("", "tool"):  # pointed out once already: the answer is due
                step.error, step.error_kind, repeated = step.observation, "repeat", True
            if step.run_end == "finished" and self.verifier is not None:
                from .verifier import verify_finish

                refused |= verify_finish(step, seen, self.verifier, cfg.verifier_threshold,
                                         may_refuse=not refused and i < cfg.max_steps)
            if step.run_end:
                yield step
                return
            given = replay.observation(i) if replay is not None else None
            if given is not None:  # the parent's observation, or the fork's edit: data like any observation
                step.observation, step.edited = given, step.edited or ("observation" if i == replay.step else "")
            step.observation = _one_line(step.observation or "", cfg.max_observation_chars)
            if gate is not None and (edited := gate.observation(step)) is not None and edited.strip() \
                    and " ".join(edited.split()) != step.observation:
                step.observation, step.edited = _one_line(one_line(edited, "observation"), cfg.max_observation_chars), "observation"
            if writer.cancel is not None and writer.cancel.is_set():
                step.run_end = "cancelled"
                yield step
                return
            obs_h = step_labels(self.prompt.style, i)[2]
            session.feed(f"{'' if text.endswith(chr(10)) else chr(10)}{obs_h} ", "scaffold", "observation header")
            session.feed(step.observation, "observation", f"observation {i}")
            session.feed("\n", "scaffold", "newline")
            if not step.error and step.verifier_score is None:
                seen.append(step.observation)
            if repeated:
                yield step
                yield writer.forced_finish(i + 1, self.prompt.style, think=cfg.mode == "react" and cfg.forced_thought)
                return
            previous = call
            if i == cfg.max_steps:
                step.run_end = "max_steps"
            yield step

    def _act(self, parsed: ParsedStep, step: Step, ctx: ToolContext, repeated: bool) -> None:
        """Turn the parsed action into an observation, an answer, or an error the model will see."""
        t0 = time.perf_counter()
        if parsed.error:
            step.error = step.observation = parsed.error
            step.error_kind = "invalid_action"
        elif parsed.action.name == FINISH and parsed.action.argument:
            step.answer, step.run_end = parsed.action.argument, "finished"
        elif parsed.action.name == FINISH:
            step.error = step.observation = "finish needs the answer inside the brackets: finish[answer]."
            step.error_kind = "invalid_action"
        elif repeated:
            step.error = step.observation = "You repeated the previous action. Give your final answer now."
            step.error_kind = "repeat"
        else:
            try:
                step.observation = self.tools.run(parsed.action.name, parsed.action.argument, ctx)
                if parsed.action.name == "search" and ctx.document is not None:
                    step.opened = ctx.document.title
            except ToolError as err:  # the same failing call again is a loop like any other: the guard sees it
                step.error, step.observation, step.error_kind = str(err), ctx.guard(f"Error: {err}"), "tool"
        step.t_tool = time.perf_counter() - t0
        step.t_total += step.t_tool

    def _corpus_or_none(self) -> Corpus | None:
        try:
            return self.corpus
        except Exception:  # no demo world available: search reports that there is no corpus
            return None


def _chat_parts(tokenizer) -> tuple[str, str, str] | None:
    """The chat template's text before the system message, between system and user, and after user."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    sys_mark, user_mark = "\x00SYSTEM\x00", "\x00USER\x00"
    for messages in ([{"role": "system", "content": sys_mark}, {"role": "user", "content": user_mark}],
                     [{"role": "user", "content": f"{sys_mark}\n\n{user_mark}"}]):
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # templates that refuse a system role: fold it into the user message
            continue
        if isinstance(text, str) and sys_mark in text and user_mark in text:
            before, rest = text.split(sys_mark, 1)
            between, after = rest.split(user_mark, 1)
            return before, between, after
    return None


def _explain(err: Exception) -> str:
    name = type(err).__name__
    if "out of memory" in str(err).lower() or name == "OutOfMemoryError":
        return ("Out of memory on the device while generating. Try a smaller model, fewer few-shot examples, "
                f"fewer steps or the CPU ({name}: {str(err)[:200]}).")
    return f"The run stopped on an internal error: {name}: {str(err)[:500]}"
