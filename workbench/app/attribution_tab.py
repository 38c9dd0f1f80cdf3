"""The Attribution tab: pick a run and a step, a target and a method; see which parts of the
prompt drove it as a heatmap and segment bars, the grounding of every step, and the diff under
another model. Results are cached in the store, so reopening one is instant."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..attribution.api import (
    ATTRIBUTION_METHODS,
    GRANULARITIES,
    TARGETS,
    attribute_cached,
    attribution_diff,
    grounding_timeline,
)
from ..attribution.methods import METHODS, MethodSetting, app_settings, grounding_method
from ..types import Trace
from ..viz import attribution_heatmap, diff_heatmap, grounding_chart, segment_bars
from .context import AppContext
from .wiring import refresh_models, shown_errors

__all__ = ["build_attribution_tab", "compute_attribution", "compute_grounding", "compute_diff", "step_choices"]


def _trace(ctx: AppContext, run_id: str) -> Trace:
    run_id = (run_id or "").strip()
    if not run_id:
        raise gr.Error("Enter a run id (from the Run or History tab) first.")
    with shown_errors():
        return ctx.store.get_trace(run_id)


def _model_label(ctx: AppContext, trace: Trace) -> str:
    return ctx.models.label_for(trace.meta.get("model_source") or None)


def step_choices(ctx: AppContext, run_id: str) -> Any:
    trace = _trace(ctx, run_id)
    steps = [str(s.index) for s in trace.steps if s.kind != "halt" and s.generation.token_ids]
    summary = f"Run `{trace.id}`: {trace.task!r} · {trace.mode} · model `{trace.model}` · {len(steps)} step(s)"
    return gr.update(choices=steps, value=steps[-1] if steps else None), summary


def _describe(result: Any, cached: bool) -> str:
    top = ", ".join(f"{label} {score:+.3f}" for label, score in result.top(3))
    shares = " · ".join(f"{g} {v:.0%}" for g, v in result.grounding().items())
    how = "from the cache" if cached else (f"{result.forward_passes} forward / {result.backward_passes} backward "
                                          f"passes in {result.seconds:.1f} s")
    return (f"**Step {result.step} · {result.target} · {result.method}** ({how})  \n"
            f"Strongest: {top}  \nGrounding: {shares}  \n"
            f"Faithfulness: {result.faithfulness.summary() if result.faithfulness else 'not measured'}")


def _has_setting(method: str, name: str) -> bool:
    entry = METHODS.get(method)
    return entry is not None and any(s.name == name for s in entry.settings)


def compute_attribution(ctx: AppContext, run_id: str, step: str, target: str, method: str, granularity: str,
                        segments: list[str] | None, *setting_values: Any) -> tuple[Any, ...]:
    """(summary, heatmap, bars, standalone HTML file) for one step, cached in the store.

    ``setting_values``: the values of the table's app settings (``app_settings()``, in order:
    n_samples, n_steps); only the chosen method's own are passed on.
    """
    trace = _trace(ctx, run_id)
    if not step:
        raise gr.Error("Pick a step.")
    with shown_errors():
        lm = ctx.models.get(_model_label(ctx, trace))
        extra = {"segments": list(segments) if segments else None}
        for setting, value in zip(app_settings(), setting_values):
            if _has_setting(method, setting.name):  # an unknown method goes on to the API, which lists the valid ones
                extra[setting.name] = setting.type(value)
        result, cached = attribute_cached(ctx.store, trace, int(step), target, method, granularity, lm, **extra)
    out = Path(tempfile.mkdtemp(prefix="wb-attr-")) / f"attribution-{trace.id}-step{step}-{target}.html"
    out.write_text(result.to_html(), encoding="utf-8")
    return _describe(result, cached), attribution_heatmap(result), segment_bars(result), str(out)


def compute_grounding(ctx: AppContext, run_id: str, method: str) -> Any:
    """The grounding of every step of a run (``method`` per step, or feature ablation where ``method``
    gives no grounding; cached)."""
    trace = _trace(ctx, run_id)
    with shown_errors():
        lm = ctx.models.get(_model_label(ctx, trace))
        results = [attribute_cached(ctx.store, trace, s.index, "step", grounding_method(method), "segment", lm)[0]
                   for s in trace.steps if s.kind != "halt" and s.generation.token_ids]
    return grounding_chart(grounding_timeline(results))


def compute_diff(ctx: AppContext, run_id: str, step: str, target: str, other_model: str) -> Any:
    """The same step attributed under the run's model and ``other_model``: aligned segment scores."""
    trace = _trace(ctx, run_id)
    with shown_errors():
        base = ctx.models.get(_model_label(ctx, trace))
        other = ctx.models.get(other_model)
        a, _ = attribute_cached(ctx.store, trace, int(step), target, "feature_ablation", "segment", base)
        b, _ = attribute_cached(ctx.store, trace, int(step), target, "feature_ablation", "segment", other)
    diff = attribution_diff(a, b, base.name, other.name)
    return diff_heatmap(diff, base.name, other.name), diff.round(4)


def _setting_control(setting: MethodSetting, method: str) -> Any:
    """The control of one of the table's settings, visible while a method that has it is chosen."""
    shown = dict(value=setting.default, label=setting.label or setting.name, info=setting.help,
                 visible=_has_setting(method, setting.name))
    if setting.type is bool:
        return gr.Checkbox(**shown)
    if setting.high is not None:
        low = setting.low if setting.low is not None else 0
        return gr.Slider(low, setting.high, step=1 if setting.type is int else (setting.high - low) / 100, **shown)
    return gr.Number(minimum=setting.low, precision=0 if setting.type is int else None, **shown)


def _shown_settings(method: str) -> list[Any]:
    return [gr.update(visible=_has_setting(method, s.name)) for s in app_settings()]


def build_attribution_tab(ctx: AppContext) -> dict[str, Any]:
    with gr.Row():
        run_id = gr.Textbox(label="Run id", scale=3, elem_id="wb-attr-run",
                            info="from the Run or History tab; the Run tab's inspector fills it in")
        load = gr.Button("Load run", scale=1, elem_id="wb-attr-load")
    summary = gr.Markdown()
    with gr.Row():
        step = gr.Dropdown(choices=[], label="Step", elem_id="wb-attr-step", allow_custom_value=True)
        target = gr.Radio(list(TARGETS), value="action", label="Target", elem_id="wb-attr-target")
        method = gr.Radio(list(ATTRIBUTION_METHODS), value="feature_ablation", label="Method", elem_id="wb-attr-method")
        granularity = gr.Radio(list(GRANULARITIES), value="segment", label="Features")
    with gr.Accordion("Settings", open=False):
        segments = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="Only these segments (labels)",
                               info="token features: narrow to a few segments, e.g. task, observation 2")
        settings = [_setting_control(s, method.value) for s in app_settings()]  # from the method table
    go_btn = gr.Button("Attribute", variant="primary", elem_id="wb-attr-go")
    result_md = gr.Markdown(elem_id="wb-attr-result")
    with gr.Row():
        bars = gr.Plot(label="Segments", elem_id="wb-attr-bars")
        heat = gr.Plot(label="Target tokens × features", elem_id="wb-attr-heat")
    html_file = gr.File(label="Standalone HTML", interactive=False)
    with gr.Accordion("Grounding of every step", open=False):
        ground_btn = gr.Button("Compute the grounding timeline")
        ground_plot = gr.Plot()
    with gr.Accordion("Diff under another model", open=False):
        other = gr.Dropdown(ctx.models.choices(), value=ctx.models.default, allow_custom_value=True,
                            label="Other model (id or folder)")
        refresh_models(ctx, other)  # new fine-tunes
        diff_btn = gr.Button("Compare")
        diff_plot = gr.Plot()
        diff_table = gr.Dataframe(headers=["label", "kind", "this run", "other model", "diff"], interactive=False)

    load.click(lambda r: step_choices(ctx, r), [run_id], [step, summary], api_name="attribution_steps")
    run_id.submit(lambda r: step_choices(ctx, r), [run_id], [step, summary], api_name=False)
    method.change(_shown_settings, [method], settings, api_name=False, queue=False, show_progress="hidden")
    go_btn.click(lambda *a: compute_attribution(ctx, *a),
                 [run_id, step, target, method, granularity, segments, *settings],
                 [result_md, heat, bars, html_file], api_name="attribute", concurrency_limit=1)
    ground_btn.click(lambda r, m: compute_grounding(ctx, r, m), [run_id, method], [ground_plot],
                     api_name="grounding", concurrency_limit=1)
    diff_btn.click(lambda r, s, t, o: compute_diff(ctx, r, s, t, o), [run_id, step, target, other],
                   [diff_plot, diff_table], api_name="attribution_diff", concurrency_limit=1)
    return {"run_id": run_id, "step": step, "summary": summary}
