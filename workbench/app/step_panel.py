"""The Run tab's step-by-step mode: the run pauses after each action (before its tool runs) and after each
observation; the person may edit either, then presses Step, or Run to end. Stop works at any moment.

Wiring only: the work is workbench.stepper.StepByStep. One step-by-step run per browser session, kept here
by session (it holds a paused thread, so it is not something gr.State could copy).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..agent import Agent, validate_task
from ..errors import InputError
from ..stepper import StepByStep
from .context import AppContext, describe_error
from .render import pause_markdown
from .wiring import guard

__all__ = ["build_step_panel", "start_stepping", "step_next", "step_to_end"]

_RUNS: dict[str, StepByStep] = {}  # browser session -> its step-by-step run
_LOCK = threading.Lock()
_STEP_TIMEOUT = 600.0  # seconds one Step may take before the handler returns (the run goes on)


Shown = Callable[..., tuple[Any, ...]]  # run_tab.trace_outputs: a trace -> the Run tab's outputs


def _outputs(ctx: AppContext, run: StepByStep, shown: Shown) -> tuple[Any, ...]:
    """The Run tab's outputs for the run so far (``shown``), then the pause line and the two edit boxes."""
    view = run.view()
    if run.done and not getattr(run, "_saved", False):
        run._saved = True  # type: ignore[attr-defined]
        try:
            ctx.store.save_trace(view)
        except Exception as err:  # the run is still shown; only its saving failed
            gr.Warning(f"The run could not be saved: {describe_error(err)}")
    step = run.pending if run.paused else None
    action = str(step.action) if step is not None and step.action is not None else ""
    observation = step.observation or "" if step is not None and run.paused == "observation" else ""
    return (*shown(view, running=not run.done), pause_markdown(run.paused, step, run.done),
            gr.update(value=action, interactive=run.paused == "action"),
            gr.update(value=observation, interactive=run.paused == "observation"))


@guard
def start_stepping(ctx: AppContext, instruction: str, mode: str, model_label: str, max_steps: float,
                   temperature: float, retrieval: str = "bm25", dynamic_k: float = 0, knowledge: str | None = None,
                   session: str = "", *, shown: Shown) -> tuple[Any, ...]:
    """Start a step-by-step run (stopping this session's previous one) and run it to its first pause."""
    task = validate_task(instruction)
    if mode not in ("react", "act"):
        raise InputError(f"Step by step pauses at actions; a {mode} run has none. Pick react or act.")
    agent = Agent(ctx.models.get(model_label), corpus=ctx.get_corpus(knowledge), mode=mode, max_steps=int(max_steps),
                  temperature=float(temperature), retrieval=retrieval or "bm25", dynamic_examples=int(dynamic_k or 0))
    with _LOCK:
        old = _RUNS.pop(session, None)
    if old is not None:
        old.stop(timeout=5)
    run = StepByStep(agent, task, cancel=ctx.cancel_event(session))
    with _LOCK:
        _RUNS[session] = run
    run.step(timeout=_STEP_TIMEOUT)
    return _outputs(ctx, run, shown)


def _run_of(session: str) -> StepByStep:
    with _LOCK:
        run = _RUNS.get(session)
    if run is None:
        raise InputError("No step-by-step run in this session: press Start step by step first.")
    return run


@guard
def step_next(ctx: AppContext, action: str = "", observation: str = "", session: str = "", *,
              shown: Shown) -> tuple[Any, ...]:
    """Go on to the next pause, with the action (or observation) as the person left it."""
    run = _run_of(session)
    run.step(action=action or None, observation=observation or None, timeout=_STEP_TIMEOUT)
    return _outputs(ctx, run, shown)


@guard
def step_to_end(ctx: AppContext, session: str = "", *, shown: Shown) -> tuple[Any, ...]:
    """Stop pausing and run to the end."""
    run = _run_of(session)
    run.run_to_end(timeout=_STEP_TIMEOUT)
    return _outputs(ctx, run, shown)


@guard
def step_stopped(ctx: AppContext, session: str = "", *, shown: Shown) -> tuple[Any, ...]:
    """After Stop: the step-by-step run as it ended (cancelled), or no change when there is none."""
    with _LOCK:
        run = _RUNS.get(session)
    if run is None:
        return tuple(gr.skip() for _ in range(10))
    run.stop(timeout=30)
    return _outputs(ctx, run, shown)


def build_step_panel(ctx: AppContext, inputs: list[Any], run_outputs: list[Any], stop_btn: Any,
                     session: Callable[[Any], str], shown: Shown) -> dict[str, Any]:
    """Lay out the step-by-step controls under the Run button and wire them; ``inputs`` and ``run_outputs``
    are the Run tab's, ``shown`` its trace -> outputs function."""
    with gr.Row():
        start = gr.Button("Start step by step", elem_id="wb-step-start")
        step_btn = gr.Button("Step", variant="primary", elem_id="wb-step-next")
        end_btn = gr.Button("Run to end", elem_id="wb-step-end")
    pause = gr.Markdown(elem_id="wb-pause")
    with gr.Row():
        action = gr.Textbox(label="Action (edit it before the tool runs)", interactive=False, elem_id="wb-pause-action")
        observation = gr.Textbox(label="Observation (edit it before the model reads it)", interactive=False,
                                 elem_id="wb-pause-observation")
    outputs = [*run_outputs, pause, action, observation]

    def _start(instruction, mode, model, max_steps, temperature, retrieval, dynamic_k, knowledge, request: gr.Request):
        return start_stepping(ctx, instruction, mode, model, max_steps, temperature, retrieval, dynamic_k, knowledge,
                              session=session(request), shown=shown)

    def _step(action, observation, request: gr.Request):
        return step_next(ctx, action, observation, session=session(request), shown=shown)

    def _end(request: gr.Request):
        return step_to_end(ctx, session=session(request), shown=shown)

    def _stopped(request: gr.Request):
        return step_stopped(ctx, session=session(request), shown=shown)

    start.click(_start, inputs, outputs, api_name="step_start", concurrency_limit=4)
    step_btn.click(_step, [action, observation], outputs, api_name="step_next", concurrency_limit=4)
    end_btn.click(_end, None, outputs, api_name="step_end", concurrency_limit=4)
    stop_btn.click(_stopped, None, outputs, api_name=False)
    return {"step_outputs": outputs}
