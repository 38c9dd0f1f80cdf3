"""The Fine-tune tab: a config form, launch, live curves (a timer polls the store), log tail, cancel,
past jobs, a preview of the trained tokens, and training data built from stored runs in one click.

The job runs in its own process (workbench.finetune.jobs); this tab only writes the job row and
reads what the worker writes, so training never blocks the app.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import gradio as gr  # imported only by build_app

from ..finetune import FineTuneConfig, cancel, job_log, list_jobs, refresh, submit
from ..viz import forgetting_chart, training_curves
from .context import AppContext, check_upload, describe_error

__all__ = ["build_finetune_tab", "launch_job", "poll_job", "jobs_table", "preview_html", "export_runs",
           "FORM_FIELDS"]

# (field, label, kind, extra) for each form input; kind: text | number | int | choice
FORM_FIELDS = [
    ("task", "What to train", "choice", ["agent", "verifier"]),
    ("base_model", "Base model (embedded, tiny, a folder or a Hugging Face id)", "text", None),
    ("data", "Training trajectories (demo:train[:types], a .jsonl path or store:RUN,RUN)", "text", None),
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
    base = "embedded" if Path(str(base)).joinpath("workbench.json").is_file() else base  # tune the base, not an adapter
    return FineTuneConfig(base_model=base, steps=100, probe_size=10, probe_interval=50, eval_interval=25)


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
    try:
        return FineTuneConfig.from_dict(data)
    except Exception as err:
        raise gr.Error(describe_error(err)) from err


def jobs_table(ctx: AppContext) -> Any:
    import pandas as pd

    rows = []
    for job in list_jobs(ctx.store, limit=50):
        res = job.get("result") or {}
        final = res.get("final", {}) if isinstance(res, dict) else {}
        rows.append({"id": job["id"], "state": job["state"], "task": job["kind"], "name": job["name"],
                     "started": time.strftime("%m-%d %H:%M", time.localtime(job["created_at"])),
                     "steps": res.get("steps", ""), "final loss": _fmt(final.get("train_loss")),
                     "probe success": _fmt(final.get("probe_success")), "adapter": res.get("adapter_dir", ""),
                     "error": (job["error"] or "")[:120]})
    return pd.DataFrame(rows, columns=["id", "state", "task", "name", "started", "steps", "final loss",
                                       "probe success", "adapter", "error"])


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else ""


def launch_job(ctx: AppContext, values: list[Any], processes: int = 1) -> str:
    cfg = config_from_form(values)
    try:
        return submit(cfg, ctx.store, processes=int(processes or 1))
    except Exception as err:
        raise gr.Error(describe_error(err)) from err


def poll_job(ctx: AppContext, job_id: str) -> tuple[str, Any, str]:
    """(status markdown, curves figure, log tail) of a job, for the timer."""
    job_id = (job_id or "").strip()
    if not job_id:
        return "No job selected. Launch one, or pick a past job below.", training_curves([]), ""
    try:
        job = refresh(job_id, ctx.store)
    except Exception as err:
        return f"**{html.escape(describe_error(err))}**", training_curves([]), ""
    points = ctx.store.job_metrics(job_id)
    steps = max((p["step"] for p in points), default=0)
    total = job["config"].get("steps", 0) * (2 if job["config"].get("continual_data") else 1)
    status = f"**{job['state']}** · job `{job_id}` · step {steps} / {total}"
    if job["error"]:
        status += f"\n\n{'Stopped' if job['state'] == 'cancelled' else 'Error'}: {html.escape(job['error'])}"
    res = job.get("result") or {}
    if job["state"] == "done" and res.get("adapter_dir"):
        status += (f"\n\nResult: `{res['adapter_dir']}` — now a model choice in the Run, Evaluate, Attribution and "
                   "Prompt lab tabs (open the model list again to see it).")
    fig = forgetting_chart(res) if job["state"] == "done" and "forgetting" in res else training_curves(points)
    return status, fig, job_log(job_id, ctx.store, lines=25)


def preview_html(ctx: AppContext, base_model: str, data: str, max_tokens: int = 600) -> str:
    """The first trajectory of ``data`` as the model sees it: trained tokens coloured by their loss."""
    from ..finetune import build_example, load_trajectories, preview

    try:
        lm = ctx.models.get(base_model if base_model not in ("", "embedded") else None)
        traj = load_trajectories(data, limit=1)[0]
        tokens = preview(build_example(lm, traj), lm.tokenizer)
    except Exception as err:
        raise gr.Error(describe_error(err)) from err
    colours = {"thought": "#c7e9c0", "action": "#fdd0a2"}
    shown = tokens[-max_tokens:]
    spans = "".join(f'<span class="wb-tok" title="{k}" style="background:{colours.get(k, "transparent")}">'
                    f'{html.escape(t)}</span>' for t, k in shown)
    n = {k: sum(1 for _, kk in tokens if kk == k) for k in ("context", "thought", "action")}
    return (f"<p>{len(tokens)} tokens: <b style='background:#c7e9c0'>{n['thought']} thought</b> (reasoning loss), "
            f"<b style='background:#fdd0a2'>{n['action']} action</b> (action loss), {n['context']} context (not "
            f"trained: prompt and observations){' — showing the last ' + str(max_tokens) if len(tokens) > max_tokens else ''}"
            f"</p><pre style='white-space:pre-wrap'>{spans}</pre>")


def export_runs(ctx: AppContext, limit: int = 1000) -> tuple[str, str]:
    """Every stored react run that finished cleanly, as training JSONL; returns (path, message)."""
    from ..finetune import export_trajectories
    from ..finetune.loop import default_output_dir

    traces = []
    for row in ctx.store.list_runs(limit=limit, mode="react"):
        try:
            traces.append(ctx.store.get_trace(row.id))
        except Exception:  # an unreadable row is skipped, never fatal
            continue
    path = default_output_dir("exports") / time.strftime("runs-%Y%m%d-%H%M%S.jsonl")
    n = export_trajectories(traces, path)
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

    def _launch(*values):
        *form, procs = values
        new_id = launch_job(ctx, list(form), procs)
        return new_id, *poll_job(ctx, new_id), jobs_table(ctx)

    def _cancel(jid):
        if jid and cancel(jid.strip(), ctx.store):
            gr.Info("Cancel requested: the job stops before its next optimisation step.")
        return poll_job(ctx, jid)

    def _tick(jid):
        return poll_job(ctx, jid)

    def _select(df, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        jid = str(df.iloc[row]["id"]) if df is not None and len(df) > row else ""
        return jid, *poll_job(ctx, jid)

    def _export():
        path, msg = export_runs(ctx)
        gr.Info(msg)
        return path, gr.update(value=path)

    base_in, data_in = inputs[1], inputs[2]
    launch.click(_launch, [*inputs, processes], [job_id, status, curves, log, table], api_name="finetune_launch")
    cancel_btn.click(_cancel, [job_id], [status, curves, log], api_name="finetune_cancel")
    timer.tick(_tick, [job_id], [status, curves, log], api_name=False, show_progress="hidden")
    table.select(_select, [table], [job_id, status, curves, log], api_name=False)
    preview_btn.click(lambda b, d: preview_html(ctx, b, d), [base_in, data_in], [preview], api_name="finetune_preview")
    export_btn.click(_export, None, [export_file, data_in], api_name="finetune_export")
    def _upload(path):
        try:
            return check_upload(path) or gr.update()
        except Exception as err:
            raise gr.Error(describe_error(err)) from err

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

