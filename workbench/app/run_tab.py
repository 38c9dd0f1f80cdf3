"""The Run tab: type an instruction, watch the steps stream in, inspect any step's exact prompt."""

from __future__ import annotations

from typing import Any, Iterator

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..agent import Agent, validate_task
from ..knowledge import DEMO_KEY
from ..prompts import MODES
from ..types import Trace
from ..viz import step_timeline, token_confidence
from .context import AppContext, describe_error, free_device_memory
from .corpus_panel import build_corpus_panel, question_samples
from .fork_panel import build_fork_panel
from .step_panel import build_step_panel
from .render import prompt_html, status_markdown, timeline_html, tokens_html
from .wiring import guard, refresh_models

__all__ = ["build_run_tab", "run_task", "inspect_step", "trace_outputs"]


def trace_outputs(trace: Trace | None, running: bool = False) -> tuple[Any, ...]:
    """(timeline html, status, step table, timeline figure, step choices, run id, trace dict) for a trace."""
    if trace is None:
        return (timeline_html(None), "", None, None, gr.update(choices=[], value=None), "", None)
    choices = [str(s.index) for s in trace.steps if s.kind != "halt"]
    return (
        timeline_html(trace, running=running),
        status_markdown(trace) if not running else f"Running… {len(trace.steps)} step(s) so far",
        trace.to_dataframe(),
        step_timeline(trace) if trace.steps else None,
        gr.update(choices=choices, value=choices[-1] if choices else None),
        trace.id,
        trace.to_dict(),
    )


@guard  # bad input or a model that will not load: tell the user, keep serving
def run_task(ctx: AppContext, instruction: str, mode: str, model_label: str, max_steps: float, temperature: float,
             session: str = "", retrieval: str = "bm25", dynamic_k: float = 0,
             knowledge: str | None = None) -> Iterator[tuple[Any, ...]]:
    """Stream a run: one output tuple per step, the trace saved to the store at the end.

    ``knowledge``: the key (or menu label) of the corpus to search; None is the demo world. A failure the
    model causes is a step's error, not an exception: only bad input and loading raise (as gr.Error)."""
    task = validate_task(instruction)
    corpus = ctx.get_corpus(knowledge)
    lm = ctx.models.get(model_label)
    agent = Agent(lm, corpus=corpus, mode=mode, max_steps=int(max_steps), temperature=float(temperature),
                  retrieval=retrieval or "bm25", dynamic_examples=int(dynamic_k or 0))
    cancel = ctx.cancel_event(session)
    yield trace_outputs(Trace(task=task, mode=mode), running=True)  # shown until the first step completes
    for trace in agent.stream(task, cancel=cancel):
        if not trace.stop_reason:  # the ended run is shown once it is stored (History then lists it)
            yield trace_outputs(trace, running=True)
    if trace.stop_reason == "error":  # e.g. out of memory on the device: give the memory back for the next run
        free_device_memory()
    try:
        ctx.store.save_trace(trace)
    except Exception as err:  # the run is still shown; only its saving failed
        gr.Warning(f"The run could not be saved: {describe_error(err)}")
    yield trace_outputs(trace)


def inspect_step(trace_dict: dict | None, step_choice: str | None) -> tuple[Any, ...]:
    """(prompt html, raw output, tokens html, confidence figure) of the chosen step."""
    if not trace_dict or not step_choice:
        return ("<i>Run something, then pick a step.</i>", "", "", None)
    trace = Trace.from_dict(trace_dict)
    step = next((s for s in trace.steps if str(s.index) == str(step_choice) and s.kind != "halt"), None)
    if step is None:
        return (f"<i>No step {step_choice} in this run.</i>", "", "", None)
    raw = f"[primer] {step.primer}\n[generated] {step.completion}\n[stop] {step.generation.stop}"
    return (prompt_html(step), raw, tokens_html(step), token_confidence(step) if step.generation.tokens else None)


def build_run_tab(ctx: AppContext) -> dict[str, Any]:
    """Lay out the tab and wire its events; returns the components other tabs need."""
    with gr.Row():
        with gr.Column(scale=3):
            instruction = gr.Textbox(label="Instruction", lines=2, elem_id="wb-instruction",
                                     placeholder="Ask about the demo world, e.g. When was Skelnandun founded?")
            examples = gr.Dataset(components=[gr.Textbox(visible=False)], samples=question_samples(ctx.examples),
                                  label="Example questions", elem_id="wb-examples", samples_per_page=8)
            knowledge = gr.Dropdown(ctx.knowledge.choices(), value=DEMO_KEY, label="Knowledge source",
                                    info="the corpus search and lookup read: the demo world, an uploaded corpus, "
                                         "a --corpus folder, or one evaluation task's own paragraphs",
                                    elem_id="wb-knowledge")
            corpora = build_corpus_panel(ctx, knowledge, examples)
        with gr.Column(scale=2):
            mode = gr.Radio(list(MODES), value="react", label="Mode", elem_id="wb-mode",
                            info="react: think and act · cot: think, then answer · act: act only · direct: answer only")
            model = gr.Dropdown(ctx.models.choices(), value=ctx.models.default, allow_custom_value=True,
                                label="Model", info="Pick one, or type a Hugging Face id or a local folder",
                                elem_id="wb-model")
            refresh_models(ctx, model)  # new fine-tunes
            with gr.Accordion("Settings", open=False):
                max_steps = gr.Slider(1, 15, value=8, step=1, label="Max steps")
                temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)")
                retrieval = gr.Radio(["bm25", "dense", "hybrid"], value="bm25", label="Search ranking",
                                     info="used when no article title matches the search exactly")
                dynamic_k = gr.Slider(0, 6, value=0, step=1, label="Dynamic few-shot k",
                                      info="0: the prompt's own examples; k: the k demo train trajectories "
                                           "nearest to the instruction (MiniLM similarity)")
    with gr.Row():
        run_btn = gr.Button("Run", variant="primary", elem_id="wb-run")
        stop_btn = gr.Button("Stop", variant="stop", elem_id="wb-stop")
    step_area = gr.Column()  # the step-by-step controls, built below once the outputs exist
    status = gr.Markdown(elem_id="wb-status")
    with gr.Row():
        with gr.Column(scale=3):
            timeline = gr.HTML(timeline_html(None), elem_id="wb-timeline")
        with gr.Column(scale=2):
            plot = gr.Plot(label="Where the time went")
    table = gr.Dataframe(Trace(task="").to_dataframe(), label="Steps", interactive=False, wrap=True,
                         elem_id="wb-steps")  # headers before the first run
    with gr.Accordion("Inspect a step: its exact prompt and raw output", open=False):
        with gr.Row():
            step_pick = gr.Dropdown(choices=[], label="Step", elem_id="wb-step-pick", scale=3)
            attribute_btn = gr.Button("Attribute this step →", scale=1, elem_id="wb-attribute-step")
        prompt_view = gr.HTML()
        raw = gr.Textbox(label="Raw output", lines=4, interactive=False)
        tokens_view = gr.HTML()
        confidence = gr.Plot(label="Token probabilities")
        fork_area = gr.Column()  # token alternatives and "Fork from here", built below
    run_id = gr.Textbox(label="Run id", interactive=False, elem_id="wb-run-id")
    trace_state = gr.State(None)

    outputs = [timeline, status, table, plot, step_pick, run_id, trace_state]
    inputs = [instruction, mode, model, max_steps, temperature, retrieval, dynamic_k, knowledge]
    with step_area:
        build_step_panel(ctx, inputs, outputs, stop_btn, _session, trace_outputs)
    with fork_area:
        build_fork_panel(ctx, trace_state, step_pick, model, _session)

    def _run(instruction, mode, model, max_steps, temperature, retrieval, dynamic_k, knowledge, request: gr.Request):
        yield from run_task(ctx, instruction, mode, model, max_steps, temperature, session=_session(request),
                            retrieval=retrieval, dynamic_k=dynamic_k, knowledge=knowledge)

    def _stop(request: gr.Request):
        ctx.cancel(_session(request))

    examples.click(lambda sample: sample[0] if sample else "", examples, instruction, api_name=False)
    run_btn.click(_run, inputs, outputs, api_name="run",
                          concurrency_limit=4)
    instruction.submit(_run, inputs, outputs, api_name=False,
                       concurrency_limit=4)
    stop_btn.click(_stop, None, None, api_name="stop", queue=False)
    step_pick.change(inspect_step, [trace_state, step_pick], [prompt_view, raw, tokens_view, confidence],
                     api_name="inspect_step")
    return {"outputs": outputs, "trace_state": trace_state, "step_pick": step_pick, "run_id": run_id,
            "attribute_btn": attribute_btn, "instruction": instruction, "knowledge": knowledge, "examples": examples,
            **corpora}


def _session(request: Any) -> str:
    return str(getattr(request, "session_hash", "") or "")
