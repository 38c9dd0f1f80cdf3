"""The ReAct agent: a model writes Thought -> Action, a tool writes the Observation, until it finishes.

``Agent.stream(task)`` yields the run's growing Trace each time a step completes (the new step is
``trace.steps[-1]``; the last value is finalised); ``Agent.run(task)`` is that last value. Whatever the model writes, the run goes on: an unreadable step or a failing
tool becomes an error observation; a repeated action forces a final answer; ``max_steps`` ends the
run with that reason recorded.

    >>> from workbench.testing import ScriptedModel
    >>> agent = Agent(ScriptedModel(["Thought: add.\\nAction: calculate[2+3]", "Thought: 5.\\nAction: finish[5]"]))
    >>> [str(trace.steps[-1].action) for trace in agent.stream("What is 2 + 3?")]
    ['calculate[2+3]', 'finish[5]']
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator

from .corpus import Corpus
from .errors import ConfigError, InputError, ToolError
from .generation import ContextFull, DecodeSession, GenerationConfig, NaiveSession
from .parsing import answer_stop, parse_answer, parse_step, react_stop
from .prompts import MODES, PromptTemplate, load_prompt, step_labels
from .tools.core import FINISH, Toolbox, ToolContext, default_tools
from .types import Step, ToolCall, Trace

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

    ``model`` is a LoadedModel (from ``load_model``) or anything with ``new_session()`` such as
    ScriptedModel. ``corpus`` defaults to the demo world's encyclopedia. Keyword arguments
    override fields of ``config``: ``Agent(lm, mode="cot", max_steps=4)``.
    """

    def __init__(self, model: Any, corpus: Corpus | None = None, tools: Toolbox | None = None,
                 prompt: PromptTemplate | str | None = None, config: AgentConfig | None = None,
                 example_pool: Any = None, **overrides: Any) -> None:
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

    def _new_session(self):
        if hasattr(self.model, "new_session"):
            return self.model.new_session()
        return (DecodeSession if self.config.reuse_cache else NaiveSession)(self.model)

    def open_session(self, task: str):
        """A new session with the rendered prompt of ``task`` fed (wrapped in the chat template)."""
        session = self._new_session()
        self._open(session, validate_task(task))
        return session

    def examples_for(self, task: str) -> list:
        """The few-shot examples of ``task``: the prompt's own, or the k nearest from the pool."""
        k = self.config.dynamic_examples
        if k <= 0:
            return self.prompt.examples
        if task not in self._picked:
            from .fewshot import default_pool

            pool = self.example_pool or default_pool(self.config.mode)
            self._picked[task] = pool.nearest(task, k)
        return self._picked[task]

    def _open(self, session, task: str) -> None:
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
    def run(self, task: str, cancel: threading.Event | None = None, **meta: Any) -> Trace:
        """Run a task to the end and return its Trace: the last value of :meth:`stream`."""
        trace = None
        for trace in self.stream(task, cancel=cancel, **meta):
            pass
        assert trace is not None  # _steps always yields at least the step that ends the run
        return trace

    def stream(self, task: str, cancel: threading.Event | None = None, **meta: Any) -> Iterator[Trace]:
        """The one streaming entry point: yield the run's Trace each time a step completes.

        The new step is ``trace.steps[-1]``; the trace is the same object throughout, and the last value
        is finalised (answer, stop reason, hashes). ``meta`` goes to the trace (``task_id=...``)."""
        t0 = time.perf_counter()
        task = validate_task(task)
        trace = self.new_trace(task, **meta)
        for step in self._steps(task, cancel):
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

    def _steps(self, task: str, cancel: threading.Event | None = None) -> Iterator[Step]:
        """Yield each Step as soon as it is complete; the last one has ``run_end`` set."""
        try:
            session = self.open_session(task)
            if self.config.mode in ("react", "act"):
                yield from self._react(session, cancel)
            else:
                yield from self._answer(session, cancel)
        except ContextFull as err:
            yield Step(index=0, kind="halt", error=f"The prompt reached the model's context length: {err}",
                       run_end="context_full")
        except Exception as err:  # a failure of the model or a tool's machinery must not end the caller
            yield Step(index=0, kind="halt", error=_explain(err), run_end="error")

    def _generate(self, session, primer: str, stop, cancel, label: str = "primer") -> tuple[Step, str]:
        """Feed the primer, generate, and return a Step with the generation's figures and the text."""
        session.feed(primer, "scaffold", label)
        prompt_segments = [replace(s) for s in session.segments]
        wrapped = lambda text: _shift(stop(primer + text), len(primer))  # noqa: E731
        t0 = time.perf_counter()
        gen = session.generate(stop=wrapped, config=self.config.generation, cancel=cancel)
        step = Step(index=0, prompt_segments=prompt_segments, primer=primer, completion=gen.text,
                    token_ids=gen.token_ids, tokens=gen.tokens, logprobs=gen.logprobs, prompt_tokens=gen.prompt_tokens,
                    reused_tokens=gen.reused_tokens, prefill_tokens=gen.prefill_tokens,
                    generated_tokens=len(gen.token_ids), draft_tokens=gen.draft_tokens,
                    accepted_tokens=gen.accepted_tokens, stop=gen.stop, t_prefill=gen.t_prefill, t_decode=gen.t_decode,
                    t_total=time.perf_counter() - t0)
        return step, primer + gen.text

    def _react(self, session, cancel) -> Iterator[Step]:
        cfg = self.config
        ctx = ToolContext(corpus=self._corpus_or_none(), retrieval=cfg.retrieval)
        previous: tuple[str, str] | None = None
        seen: list[str] = []  # the run's tool observations, for the verifier
        refused = False  # the verifier refuses at most one finish per run, so every run still ends
        for i in range(1, cfg.max_steps + 1):
            thought_h, action_h, obs_h = step_labels(self.prompt.style, i)
            primer = thought_h if cfg.mode == "react" else action_h
            step, text = self._generate(session, primer, react_stop, cancel)
            step.index, step.kind = i, cfg.mode
            parsed, text = self._read(session, step, text, action_h, cancel)
            if step.stop == "cancelled":
                step.run_end = "cancelled"
                yield step
                return
            call = (parsed.action.name, parsed.action.argument.lower()) if parsed.action else None
            # The same action again is a loop, except a lookup that still has further results to give
            # (after "No more results." the same lookup only says that again).
            repeated = call == previous and parsed.action is not None and (
                parsed.action.name != "lookup" or ctx.exhausted)
            self._act(parsed, step, ctx, repeated)
            if step.run_end == "finished" and self.verifier is not None:
                from .verifier import verify_finish

                refused |= verify_finish(step, seen, self.verifier, cfg.verifier_threshold,
                                         may_refuse=not refused and i < cfg.max_steps)
            if step.run_end:
                yield step
                return
            step.observation = _one_line(step.observation or "", cfg.max_observation_chars)
            session.feed(f"{'' if text.endswith(chr(10)) else chr(10)}{obs_h} ", "scaffold", "observation header")
            session.feed(step.observation, "observation", f"observation {i}")
            session.feed("\n", "scaffold", "newline")
            if not step.error and step.verifier_score is None:
                seen.append(step.observation)
            if repeated:
                yield step
                yield self._forced_finish(session, i + 1, cancel)
                return
            previous = call
            if i == cfg.max_steps:
                step.run_end = "max_steps"
            yield step

    def _read(self, session, step: Step, text: str, action_h: str, cancel):
        """Parse the step; label its thought and action segments; ask for the action if it is missing."""
        i, primer = step.index, step.primer
        parsed = parse_step(text, self.tools)
        if parsed.action is None and self.config.mode == "react" and step.stop != "cancelled":
            # A thought but no action: keep the thought and ask for the action, as the ReAct
            # paper's own code does ("Thought i: ...\nAction i:").
            _spans(step, session.label_generated([("thought", f"thought {i}", len(step.completion))]),
                   step.prompt_tokens, 0)
            first = len(step.token_ids)
            text, second_start = self._ask_for_action(session, step, text, action_h, cancel)
            parsed = parse_step(text, self.tools)
            step.gen_split = first
            _spans(step, session.label_generated([("action", f"action {i}", len(step.action_completion))]),
                   second_start, first)
        else:
            split = max(0, parsed.thought_end - len(primer))
            parts = [("thought", f"thought {i}", split)] if split > 0 else []
            _spans(step, session.label_generated(parts + [("action", f"action {i}", len(step.completion))]),
                   step.prompt_tokens, 0)
        step.thought = parsed.thought if self.config.mode == "react" else None
        step.action = parsed.action
        return parsed, text

    def _act(self, parsed, step: Step, ctx: ToolContext, repeated: bool) -> None:
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
            except ToolError as err:
                step.error, step.observation, step.error_kind = str(err), f"Error: {err}", "tool"
        step.t_tool = time.perf_counter() - t0
        step.t_total += step.t_tool

    def _ask_for_action(self, session, step: Step, text: str, action_h: str, cancel) -> tuple[str, int]:
        """Feed ``\nAction N:`` after a thought that had no action, generate it, merge it into ``step``.

        Returns the step's text so far and where the second generation began in the sequence."""
        sep = "" if text.endswith("\n") else "\n"
        more, _ = self._generate(session, f"{sep}{action_h}", react_stop, cancel, label="action primer")
        step.action_primer, step.action_completion = more.primer, more.completion
        for name in ("token_ids", "tokens", "logprobs"):
            getattr(step, name).extend(getattr(more, name))
        for name in ("prefill_tokens", "generated_tokens", "draft_tokens", "accepted_tokens", "t_prefill", "t_decode",
                     "t_total"):
            setattr(step, name, getattr(step, name) + getattr(more, name))
        step.stop = more.stop
        return text + more.primer + more.completion, more.prompt_tokens

    def _forced_finish(self, session, index: int, cancel) -> Step:
        """After a repeated action: prime ``finish[`` and take what the model writes as the answer."""
        _, action_h, _ = step_labels(self.prompt.style, index)
        finish = "Finish[" if self.prompt.style == "numbered" else "finish["
        stop = lambda text: next((i + (ch == "]") for i, ch in enumerate(text) if ch in "]\n"), None)  # noqa: E731
        step, text = self._generate(session, f"{action_h} {finish}", stop, cancel)
        _spans(step, session.label_generated([("answer", f"answer {index}", len(step.completion))]), step.prompt_tokens, 0)
        step.index, step.kind, step.run_end = index, "forced_finish", "repeated_action"
        answer = step.completion.split("]")[0].strip()
        step.action = ToolCall(FINISH, answer, f"{finish}{step.completion}")
        step.answer = answer or None
        return step

    def _corpus_or_none(self) -> Corpus | None:
        try:
            return self.corpus
        except Exception:  # no demo world available: search reports that there is no corpus
            return None

    def _answer(self, session, cancel) -> Iterator[Step]:
        """cot / direct: one step that reasons (cot) and answers."""
        primer = "Thought:" if self.config.mode == "cot" else self.prompt.answer_prefix
        step, text = self._generate(session, primer, answer_stop, cancel)
        step.index, step.kind = 1, "answer"
        thought, answer = parse_answer(text, self.prompt.answer_prefix)
        if answer is None and self.config.mode == "direct":
            answer = step.completion.strip().split("\n")[0].strip() or None
        step.thought, step.answer = thought, answer
        # The answer part starts at the last "Answer:" line (cot); in direct mode all of it is the answer.
        lines = list(re.finditer(r"\n[ \t]*(?:final[ \t]+)?answer", step.completion, re.IGNORECASE))
        where = lines[-1].start() if lines and answer else -1
        parts = [("thought", "thought 1", where)] if where > 0 else []
        _spans(step, session.label_generated(parts + [("answer", "answer", len(step.completion))]), step.prompt_tokens, 0)
        if step.stop == "cancelled":
            step.run_end = "cancelled"
        elif answer is None:
            step.error = f"No answer found: the model did not write '{self.prompt.answer_prefix} ...'."
            step.run_end = "no_answer"
        else:
            step.run_end = "finished"
        yield step


def _spans(step: Step, segments: list, gen_start: int, offset: int) -> None:
    """Record where each labelled part (thought, action, answer) lies in ``step.token_ids``."""
    for seg in segments:
        step.target_spans[seg.kind] = [offset + seg.start - gen_start, offset + seg.end - gen_start]


def _shift(cut: int | None, offset: int) -> int | None:
    return None if cut is None else max(0, cut - offset)


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
