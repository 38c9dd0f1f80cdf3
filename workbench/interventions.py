"""Interventions: fork a run at a step with one thing changed, and see what the change did.

Attribution says what a step correlates with; an intervention says what causes it. ``fork`` replays a
stored run up to a step, replaces that step's thought, action or observation (or one generated token,
or the task, prompt or model) and lets the agent go on. The part before the edit is not generated
again, and while the parent's keys / values are kept in this process (the last few runs) not even
computed again: the fork's cache is the parent's, cut at the edit. A greedy fork with no change
reproduces its parent token for token.

    >>> from workbench.testing import ScriptedModel
    >>> lm = ScriptedModel(["Thought: look.\\nAction: search[Varnholt]", "Thought: ok.\\nAction: finish[1312]",
    ...                     "Thought: ok.\\nAction: finish[1523]"])
    >>> parent = Agent(lm, max_steps=3).run("When was Varnholt founded?")
    >>> child = fork(parent, 1, lm, observation="Varnholt was founded in 1523.")
    >>> child.answer, child.meta["fork"]["edit"]["part"]
    ('1523', 'observation')
"""

from __future__ import annotations

import math
import threading
from dataclasses import fields
from typing import Any, Iterator

from .agent import Agent, AgentConfig, validate_task
from .corpus import Corpus
from .errors import InputError, PromptError
from .prompt_experiments import Comparison, diff_traces
from .prompts import PromptTemplate, load_prompt
from .replay import Edit, Replay, fork_meta
from .types import Step, Trace

__all__ = ["fork", "stream_fork", "make_edit", "compare_fork", "fork_agent", "token_alternatives", "first_step_after",
           "Edit"]


def make_edit(trace: Trace, step: int, *, thought: str | None = None, action: str | None = None,
              observation: str | None = None, task: str | None = None, token: tuple[int, int | str] | None = None,
              prompt: PromptTemplate | str | None = None) -> Edit:
    """The one Edit the keyword names (at most one), checked against ``trace``'s step; errors name the fix."""
    given = {k: v for k, v in {"thought": thought, "action": action, "observation": observation, "task": task,
                               "token": token}.items() if v is not None}
    if len(given) > 1:
        raise InputError(f"A fork changes one thing; got {', '.join(given)}. Fork again from the fork for more.")
    if not trace.steps:
        raise InputError(f"Run {trace.id} has no steps to fork from.")
    if not isinstance(step, int) or not 1 <= step <= len(trace.steps):
        raise InputError(f"Run {trace.id} has steps 1 to {len(trace.steps)}; got step {step!r}.")
    target = trace.steps[step - 1]
    if given and trace.mode not in ("react", "act") and "task" not in given and "token" not in given:
        raise InputError(f"A {trace.mode} run has one step that answers; fork it with task=... (or a token), "
                         "or fork a react run.")
    if not given:  # no change (a prompt or model change reruns from the task)
        return Edit("none")
    part, value = next(iter(given.items()))
    if target.kind == "halt":
        raise InputError(f"Step {step} of run {trace.id} is where the run stopped ({target.error}); fork an earlier step.")
    if part == "observation" and target.observation is None:
        raise InputError(f"Step {step} ended the run with an answer, so it has no observation to change. "
                         "Change its action instead (action=...).")
    if part == "token":
        return _token_edit(target, *value)  # type: ignore[misc]
    if part == "task":
        return Edit("task", validate_task(value))
    return Edit(part, value)  # type: ignore[arg-type]


def _token_edit(step: Step, position: int, choice: int | str) -> Edit:
    g = step.generation
    first = step.gen_split if step.gen_split >= 0 else len(g.token_ids)
    if step.edited in ("thought", "action"):
        raise InputError(f"Step {step.index} has text a person wrote; fork its tokens in the fork's parent instead.")
    if not 0 <= position < first:
        raise InputError(f"Step {step.index} generated tokens 0 to {first - 1} in one go; got position {position}.")
    alts = g.alternatives[position] if position < len(g.alternatives) else []
    if isinstance(choice, str) and not choice.lstrip("-").isdigit():
        match = [a for a in alts if a[0] == choice]
        if not match:
            listed = ", ".join(repr(a[0]) for a in alts) or "none were recorded"
            raise InputError(f"{choice!r} is not among the alternatives recorded at token {position}: {listed}.")
        choice = match[0][1]
    return Edit("token", position=position, token_id=int(choice))


def fork_agent(trace: Trace, model: Any, corpus: Corpus | None = None, prompt: PromptTemplate | str | None = None) -> Agent:
    """An agent set up as ``trace``'s was: its settings, its prompt (found by hash) and the given corpus."""
    known = {f.name for f in fields(AgentConfig)}
    config = AgentConfig(**{k: v for k, v in (trace.config or {}).items() if k in known})
    if prompt is not None:
        return Agent(model, corpus=corpus, prompt=prompt, config=config)
    agent = Agent(model, corpus=corpus, config=config)
    if not trace.prompt_hash or agent.prompt.hash == trace.prompt_hash:
        return agent
    try:  # the parent ran a named preset other than the default one
        other = Agent(model, corpus=corpus, prompt=load_prompt(trace.prompt_name, mode=trace.mode), config=config)
    except PromptError:
        other = None
    if other is not None and other.prompt.hash == trace.prompt_hash:
        return other
    raise InputError(f"Run {trace.id} used prompt {trace.prompt_name!r} (hash {trace.prompt_hash[:8]}), which is not "
                     "a preset here; pass its template as prompt=... (e.g. resolve_prompt_ref(store, NAME)[0]).")


def stream_fork(trace: Trace, step: int, model: Any, *, corpus: Corpus | None = None,
                prompt: PromptTemplate | str | None = None, cancel: threading.Event | None = None,
                **change: Any) -> Iterator[Trace]:
    """Fork ``trace`` at ``step`` (1-based) with the one change in ``change`` and yield the fork's growing Trace.

    ``change``: ``thought=``, ``action=``, ``observation=``, ``task=`` (text) or ``token=(position, token)``
    (the step's generated token at ``position`` replaced by an id or one of its recorded alternatives); none
    reruns the step as it was. ``prompt`` (or a ``model`` other than the run's) reruns from the task with it.
    The fork's ``meta['fork']`` holds the parent id, the step and the edit.
    """
    edit = make_edit(trace, step, prompt=prompt, **change)
    name = str(getattr(model, "name", ""))
    same_model = not trace.model or name == trace.model
    agent = fork_agent(trace, model, corpus, prompt)
    rerun = edit.part == "task" or prompt is not None or not same_model
    meta = {k: v for k, v in trace.meta.items() if k in ("task_id", "suite", "corpus", "model_source")}
    meta["fork"] = fork_meta(trace, 1 if rerun else step, edit)
    if prompt is not None:
        meta["fork"]["prompt"] = agent.prompt.name
    if not same_model:
        meta["fork"]["model"] = name
    if edit.part == "token" and not getattr(agent._new_session(), "reuse_cache", False):
        raise InputError("Forking at a token needs a model with a tokenizer (load_model(...)) and reuse_cache=True.")
    task = edit.text if edit.part == "task" else trace.task
    replay = None if rerun else Replay(trace, step, edit)
    if edit.part == "token" and trace.mode not in ("react", "act"):
        raise InputError("Token forks of cot / direct runs are not supported yet; fork a react run.")
    for child in agent.stream(task, cancel=cancel, replay=replay, **meta):
        child.gold = trace.gold
        yield child


def fork(trace: Trace, step: int, model: Any, **kwargs: Any) -> Trace:
    """Fork ``trace`` at ``step`` and run the fork to its end: the last value of :func:`stream_fork`."""
    result = None
    for result in stream_fork(trace, step, model, **kwargs):
        pass
    assert result is not None
    return result


def first_step_after(fork_trace: Trace) -> int | None:
    """The first step the fork's change could act on: the edited step itself when the model wrote part of it
    after the edit (a thought or a token), else the next one."""
    info = fork_trace.meta.get("fork") or {}
    step, part = int(info.get("step", 1)), (info.get("edit") or {}).get("part", "none")
    return step if part in ("thought", "token", "none", "task") else step + 1


def compare_fork(parent: Trace, child: Trace, *, attribution: bool = False, model: Any = None,
                 method: str = "feature_ablation") -> Comparison:
    """The parent and its fork side by side, aligned at the fork point (steps keep their numbers), with their
    outcomes; with ``attribution``, the attribution diff of the first step after the fork both runs have
    (which parts of the prompt now drive it)."""
    info = child.meta.get("fork") or {}
    edit = info.get("edit") or {}
    label = f"fork at step {info.get('step', '?')} ({edit.get('part', 'none')})"
    result = Comparison(parent.task, ("original", label), (parent, child), diff_traces(parent, child))
    at = first_step_after(child)
    both = at is not None and at <= len(parent.steps) and at <= len(child.steps) and \
        parent.steps[at - 1].generation.token_ids and child.steps[at - 1].generation.token_ids
    if attribution and both:
        from .attribution import attribute_step, attribution_diff

        a = attribute_step(parent, at, "step", method, model=model, check_masks=0)
        b = attribute_step(child, at, "step", method, model=model, check_masks=0)
        result.attribution = attribution_diff(a, b, "original", "fork")
    return result


def token_alternatives(step: Step) -> list[dict[str, Any]]:
    """For each generated token of ``step``: the token, its probability, the entropy there and the top
    alternatives ``[(token, id, probability), ...]`` recorded while decoding (no extra forward pass)."""
    g = step.generation
    rows = []
    for i, tok in enumerate(g.tokens):
        alts = g.alternatives[i] if i < len(g.alternatives) else []
        rows.append({"position": i, "token": tok, "p": math.exp(g.logprobs[i]) if i < len(g.logprobs) else None,
                     "entropy": g.entropy[i] if i < len(g.entropy) else None,
                     "alternatives": [(a[0], int(a[1]), math.exp(a[2])) for a in alts]})
    return rows


def parent_corpus(trace: Trace, sources: Any) -> Corpus | None:
    """The corpus ``trace`` searched, found among ``sources`` (a KnowledgeSources) by content hash; None is the
    demo world's. An InputError names the corpus when it is no longer there."""
    info = trace.meta.get("corpus") or {}
    want = info.get("hash")
    if not want or trace.mode not in ("react", "act"):
        return None
    for _, key in sources.choices():
        try:
            corpus = sources.get(key)
        except Exception:  # an unreadable source is simply not this run's
            continue
        if corpus.fingerprint == want:
            return corpus
    raise InputError(f"Run {trace.id} searched the corpus {info.get('name')!r} (hash {str(want)[:8]}), which is not "
                     "among the knowledge sources any more; add it again (or pass --corpus PATH) to fork this run.")
