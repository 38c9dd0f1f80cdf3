"""The Fine-tune tab: a config form, launch, live curves (a timer polls the store), log tail, cancel,
past jobs, a preview of the trained tokens, and training data built from stored runs in one click.

The job runs in its own process (workbench.finetune.jobs); this tab only writes the job row and
reads what the worker writes, so training never blocks the app.
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr  # imported only by build_app

from .. import finetune as ft
from ..finetune import FineTuneConfig, cancel, job_log, refresh, submit
from ..models import is_finetune_folder
from ..viz import forgetting_chart, training_curves
from .context import AppContext, check_upload, describe_error
from .wiring import api_params, guard, pick_row

__all__ = ["build_finetune_tab", "launch_job", "poll_job", "jobs_table", "preview_html", "export_runs",
           "FORM_FIELDS"]

# (field, label, kind, extra) for each form input; kind: text | number | int | choice
FORM_FIELDS = [
    ("task", "What to train", "choice", ["agent", "verifier"]),
    ("base_model", "Base model (embedded, tiny, a folder or a Hugging Face id)", "text", None),
    ("data", "Training trajectories (demo:train[:types], demo2:train, hotpotqa:PATH, a .jsonl path or store:RUN,RUN)",
     "text", None),
    ("eval_data", "Evaluation-loss trajectories", "text", None),
    ("method", "Method", "choice", ["lora", "full"]),
    ("steps", "Steps", "int", None),
    ("learning_rate", "Learning rate", "number", None),
    ("batch_tokens", "Tokens per micro-batch (packed)", "int", None),
    ("grad_accum", "Gradient accumulation", "int", None),
    ("max_length", "Max sequence length", "int", None),
    ("weight_decay", "Weight decay (AdamW, decoupled)", "number", None),
    ("lora_r", "LoRA rank", "int", None),
    ("reasoning_weight", "Loss weight: reasoning (thoughts)", "number", None),
    ("action_weight", "Loss weight: action", "number", None),
    ("eval_interval", "Evaluate every N steps (0 = at the end)", "int", None),
    ("probe_interval", "Probe the agent every N steps (0 = at the end)", "int", None),
    ("probe_size", "Probe tasks", "int", None),
    ("seed", "Seed", "int", None),
    ("continual_data", "Continual learning: then train on (blank = off)", "text", None),
    ("replay_fraction", "Replay fraction from the first family", "number", None),
]


def _defaults(ctx: AppContext) -> FineTuneConfig:
    base = ctx.models.spec(ctx.models.default) or "embedded"
    base = "embedded" if is_finetune_folder(base) else base  # tune the base, not an adapter
    return FineTuneConfig(base_model=base, steps=100, probe_size=10, probe_interval=50, eval_interval=25)


@guard
def config_from_form(values: list[Any]) -> FineTuneConfig:
    data: dict[str, Any] = {}
    for (name, _label, kind, _extra), value in zip(FORM_FIELDS, values):
        if kind == "int":
            if value is None or float(value) != int(float(value)):
                raise gr.Error(f"{name} must be a whole number, got {value!r}.")
            value = int(float(value))
        elif kind == "number":
            if value is None:
                raise gr.Error(f"{name} needs a number.")
            value = float(value)
        else:
            value = "" if value is None else str(value).strip()
        data[name] = value
    return FineTuneConfig.from_dict(data)


def jobs_table(ctx: AppContext) -> Any:
    """The past jobs table (workbench.finetune.jobs_table of the app's store)."""
    return ft.jobs_table(ctx.store, limit=50)


@guard
def launch_job(ctx: AppContext, values: list[Any], processes: int = 1) -> str:
    return submit(config_from_form(values), ctx.store, processes=int(processes or 1))


def poll_job(ctx: AppContext, job_id: str) -> tuple[str, Any, str]:
    """(status markdown, curves figure, log tail) of a job, for the timer (which shows an error, never raises)."""
    import html

    job_id = (job_id or "").strip()
    if not job_id:
        return "No job selected. Launch one, or pick a past job below.", training_curves([]), ""
    try:
        job = refresh(job_id, ctx.store)
    except Exception as err:
        return f"**{html.escape(describe_error(err))}**", training_curves([]), ""
    points = ctx.store.job_metrics(job_id)
    status = ft.job_status(job, points)
    res = job.get("result") or {}
    if job["state"] == "done" and res.get("adapter_dir"):
        status += (" — now a model choice in the Run, Evaluate, Attribution and Prompt lab tabs (open the model "
                   "list again to see it).")
    fig = forgetting_chart(res) if job["state"] == "done" and "forgetting" in res else training_curves(points)
    return status, fig, job_log(job_id, ctx.store, lines=25)


@guard
def preview_html(ctx: AppContext, base_model: str, data: str, max_tokens: int = 600) -> str:
    """The first trajectory of ``data`` as the model sees it: trained tokens coloured by their loss."""
    lm = ctx.models.get(base_model if base_model not in ("", "embedded") else None)
    example = ft.build_example(lm, ft.load_trajectories(data, limit=1)[0])
    return ft.preview_html(example, lm.tokenizer, max_tokens)


def export_runs(ctx: AppContext, limit: int = 1000) -> tuple[str, str]:
    """Every stored react run that finished cleanly, as training JSONL; returns (path, message)."""
    from ..finetune.loop import default_output_dir

    traces = ft.traces_from_store(ctx.store, limit=limit)
    path = default_output_dir("exports") / time.strftime("runs-%Y%m%d-%H%M%S.jsonl")
    n = ft.export_trajectories(traces, path)
    return str(path), f"Wrote {n} trajectories (of {len(traces)} react runs) to `{path}`."


def build_finetune_tab(ctx: AppContext) -> dict[str, Any]:
    defaults = _defaults(ctx)
    inputs: list[Any] = []
    gr.Markdown("Fine-tune the agent's model (LoRA or full) on ReAct trajectories, or the MiniLM answer verifier. "
                "The job runs in its own process; curves update live. Loss is on thought and action tokens only.")
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                for name, label, kind, extra in FORM_FIELDS[:5]:
                    inputs.append(_input(name, label, kind, extra, getattr(defaults, name)))
            with gr.Row():
                for name, label, kind, extra in FORM_FIELDS[5:11]:
                    inputs.append(_input(name, label, kind, extra, getattr(defaults, name)))
            with gr.Accordion("More settings: loss weights, probes, continual learning", open=False):
                with gr.Row():
                    for name, label, kind, extra in FORM_FIELDS[11:16]:
                        inputs.append(_input(name, label, kind, extra, getattr(defaults, name)))
                with gr.Row():
                    for name, label, kind, extra in FORM_FIELDS[16:]:
                        inputs.append(_input(name, label, kind, extra, getattr(defaults, name)))
                processes = gr.Number(1, precision=0, label="Processes (accelerate launch)", elem_id="wb-ft-procs")
                upload = gr.File(label="Upload trajectories (.jsonl)", file_types=[".jsonl"], elem_id="wb-ft-upload")
            with gr.Row():
                launch = gr.Button("Launch fine-tune", variant="primary", elem_id="wb-ft-launch")
                cancel_btn = gr.Button("Cancel", variant="stop", elem_id="wb-ft-cancel")
                preview_btn = gr.Button("Preview trained tokens", elem_id="wb-ft-preview")
                export_btn = gr.Button("Training data from stored runs", elem_id="wb-ft-export")
        with gr.Column(scale=2):
            job_id = gr.Textbox(label="Job", elem_id="wb-ft-job")
            status = gr.Markdown(elem_id="wb-ft-status")
            log = gr.Textbox(label="Log (tail)", lines=10, max_lines=10, interactive=False, elem_id="wb-ft-log")
    curves = gr.Plot(label="Curves", elem_id="wb-ft-curves")
    preview = gr.HTML(elem_id="wb-ft-preview-html")
    export_file = gr.File(label="Exported training data", visible=True, interactive=False)
    table = gr.Dataframe(jobs_table(ctx), label="Past jobs — click a row to show its curves", interactive=False,
                         elem_id="wb-ft-jobs")
    timer = gr.Timer(2.0, active=True)

    @api_params(*[name for name, *_ in FORM_FIELDS], "processes")
    def _launch(*values):
        *form, procs = values
        new_id = launch_job(ctx, list(form), procs)
        return new_id, *poll_job(ctx, new_id), jobs_table(ctx)

    def _cancel(job_id):  # the parameters' names are the API's (gradio_client), so they shadow the components
        if job_id and cancel(job_id.strip(), ctx.store):
            gr.Info("Cancel requested: the job stops before its next optimisation step.")
        return poll_job(ctx, job_id)

    def _tick(job_id):
        return poll_job(ctx, job_id)

    def _preview(base_model, data):
        return preview_html(ctx, base_model, data)

    def _export():
        path, msg = export_runs(ctx)
        gr.Info(msg)
        return path, gr.update(value=path)

    @guard
    def _upload(path):
        return check_upload(path) or gr.update()

    base_in, data_in = inputs[1], inputs[2]
    launch.click(_launch, [*inputs, processes], [job_id, status, curves, log, table], api_name="finetune_launch")
    cancel_btn.click(_cancel, [job_id], [status, curves, log], api_name="finetune_cancel")
    timer.tick(_tick, [job_id], [status, curves, log], api_name=False, show_progress="hidden")
    table.select(pick_row("id"), [table], [job_id], api_name=False).then(
        _tick, [job_id], [status, curves, log], api_name=False)
    preview_btn.click(_preview, [base_in, data_in], [preview], api_name="finetune_preview")
    export_btn.click(_export, None, [export_file, data_in], api_name="finetune_export")
    upload.upload(_upload, [upload], [data_in], api_name=False)
    job_id.submit(_tick, [job_id], [status, curves, log], api_name="finetune_status")
    return {"job_id": job_id, "status": status, "timer": timer, "table": table}


def _input(name: str, label: str, kind: str, extra: Any, value: Any) -> Any:
    elem = f"wb-ft-{name.replace('_', '-')}"
    if kind == "choice":
        return gr.Dropdown(extra, value=value, label=label, elem_id=elem)
    if kind in ("int", "number"):
        return gr.Number(value, label=label, precision=0 if kind == "int" else None, elem_id=elem)
    return gr.Textbox(value, label=label, elem_id=elem)

