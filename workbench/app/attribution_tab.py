"""The Attribution tab: pick a run and a step, a target and a method; see which parts of the
prompt drove it as a heatmap, segment bars (for sentence or token features, segment totals and
then the sentences inside one segment) and the map drawn over the prompt's own text, with how
faithful the map is and what it cost; the dependency map of every step, the grounding of every
step, and the diff under another model. Long work shows progress and can be stopped. Results are
cached in the store, so reopening one is instant."""

from __future__ import annotations

import tempfile
import threading
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
from ..attribution.dependency import dependency_map
from ..attribution.methods import METHODS, MethodSetting, app_settings, grounding_method
from ..types import Trace
from ..viz import (
    attribution_heatmap,
    dependency_heatmap,
    diff_heatmap,
    grounding_chart,
    segment_bars,
    segment_level_bars,
)
from .context import AppContext
from .wiring import api_params, refresh_models, shown_errors

__all__ = ["build_attribution_tab", "compute_attribution", "compute_grounding", "compute_diff", "compute_map",
           "step_choices", "stop_attribution"]

_CANCELS: dict[str, threading.Event] = {}  # session -> the Stop event of its running attribution
_CANCELS_LOCK = threading.Lock()


def _cancel_event(request: Any) -> threading.Event:
    """A fresh Stop event for this browser session (its earlier one is replaced)."""
    key = getattr(request, "session_hash", None) or "default"
    with _CANCELS_LOCK:
        _CANCELS[key] = event = threading.Event()
    return event


def stop_attribution(request: gr.Request) -> str:
    """Stop this session's running attribution or dependency map before its next model pass."""
    key = getattr(request, "session_hash", None) or "default"
    with _CANCELS_LOCK:
        event = _CANCELS.get(key)
    if event is None:
        return "Nothing is running."
    event.set()
    return "Stopping: the attribution ends before its next model pass; nothing partial is kept."


def _reporter(progress: Any) -> Any:
    if progress is None:
        return None

    def report(done: int, total: int, phase: str) -> None:
        what = {"method": "model passes", "checks": "faithfulness checks", "steps": "steps"}.get(phase, phase)
        progress((done, total), desc=f"{what}: {done} of {total}")

    return report


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
    how = "from the cache" if cached else result.cost()
    faith = result.faithfulness
    lead = ""
    if faith is not None and faith.lds is not None:
        lead = f"This map explains **{max(faith.lds, 0.0):.2f}** of what held-out ablations do (LDS).  \n"
    extra = ""
    if "convergence_delta" in result.settings:
        extra = (f"  \nIntegrated gradients' convergence delta: {result.settings['convergence_delta']:+.4f} "
                 f"({result.settings.get('convergence_delta_share', 0.0):.1%} of the change it explains)")
    if result.settings.get("fit_r2") is not None:
        extra += f"  \nSurrogate fit R² on its own ablations: {result.settings['fit_r2']:.2f}"
    return (f"**Step {result.step} · {result.target} · {result.method}** · {result.granularity} features "
            f"({how})  \n{lead}Strongest: {top}  \nGrounding: {shares}  \n"
            f"Faithfulness: {faith.summary() if faith else 'not measured'}{extra}")


def _has_setting(method: str, name: str) -> bool:
    entry = METHODS.get(method)
    return entry is not None and any(s.name == name for s in entry.settings)


def compute_attribution(ctx: AppContext, run_id: str, step: str, target: str, method: str, granularity: str,
                        segments: list[str] | None, *setting_values: Any, progress: Any = None,
                        cancel: Any = None) -> tuple[Any, ...]:
    """(summary, heatmap, bars, standalone HTML file, text map, segment picker, sentences inside it,
    the result) for one step, cached in the store.

    ``setting_values``: the values of the table's app settings (``app_settings()``, in order:
    n_samples, n_ablations, n_perturbations, n_steps); only the chosen method's own are passed on.
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
        result, cached = attribute_cached(ctx.store, trace, int(step), target, method, granularity, lm,
                                          progress=_reporter(progress), cancel=cancel, **extra)
    out = Path(tempfile.mkdtemp(prefix="wb-attr-")) / f"attribution-{trace.id}-step{step}-{target}.html"
    out.write_text(result.to_html(), encoding="utf-8")
    two_level = result.granularity != "segment"
    bars = segment_level_bars(result) if two_level else segment_bars(result)
    totals = result.segment_scores()
    best = max(totals, key=lambda k: abs(totals[k])) if totals else None
    picker = gr.update(choices=list(totals), value=best, visible=two_level)
    inside = inside_bars(result, best) if two_level else None
    return (_describe(result, cached), attribution_heatmap(result), bars, str(out), result.text_map_html(), picker,
            inside, result)


def inside_bars(result: Any, segment: str | None) -> Any:
    """The second level of the view: the sentences (or tokens) inside ``segment``."""
    import plotly.graph_objects as go

    from ..viz import KIND_COLORS, _short

    if result is None or not segment:
        return None
    inside = result.inside(segment)
    fig = go.Figure(go.Bar(x=[f.label for f, _ in inside], y=[s for _, s in inside],
                           marker_color=[KIND_COLORS.get(f.kind, "#999999") for f, _ in inside],
                           hovertext=[_short(f.text or f.label, 160) for f, _ in inside],
                           hovertemplate="%{hovertext}<br>score %{y:+.4f}<extra></extra>"))
    fig.update_layout(title=f"Inside {segment}", yaxis_title="effect on log p of the target", height=340,
                      margin=dict(l=10, r=10, t=50, b=80))
    return fig


def compute_map(ctx: AppContext, run_id: str, method: str, progress: Any = None, cancel: Any = None) -> tuple[Any, Any]:
    """The dependency map of a run: every step (rows) against the parts of its prompt (columns)."""
    trace = _trace(ctx, run_id)
    with shown_errors():
        lm = ctx.models.get(_model_label(ctx, trace))
        dep = dependency_map(trace, grounding_method(method), "step", lm, progress=_reporter(progress), cancel=cancel)
    strongest = dep.strongest()
    table = []
    for s, row in zip(dep.steps, dep.matrix):
        part = strongest.get(s, "")
        score = row[dep.columns.index(part)] if part else None
        table.append([f"step {s}", part, "" if score is None else f"{score:+.3f}"])
    return dependency_heatmap(dep), table


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
        granularity = gr.Radio(list(GRANULARITIES), value="segment", label="Features", elem_id="wb-attr-granularity")
    with gr.Accordion("Settings", open=False):
        segments = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="Only these segments (labels)",
                               info="token features: narrow to a few segments, e.g. task, observation 2")
        settings = [_setting_control(s, method.value) for s in app_settings()]  # from the method table
    with gr.Row():
        go_btn = gr.Button("Attribute", variant="primary", elem_id="wb-attr-go", scale=3)
        stop_btn = gr.Button("Stop", variant="stop", elem_id="wb-attr-stop", scale=1)
    result_md = gr.Markdown(elem_id="wb-attr-result")
    last = gr.State(None)
    with gr.Row():
        bars = gr.Plot(label="Segments", elem_id="wb-attr-bars")
        heat = gr.Plot(label="Target tokens × features", elem_id="wb-attr-heat")
    with gr.Row():
        inside_pick = gr.Dropdown([], label="Sentences inside segment", visible=False, elem_id="wb-attr-inside-pick")
    inside_plot = gr.Plot(label="Inside the segment", elem_id="wb-attr-inside")
    with gr.Accordion("The map over the prompt's text", open=True):
        leave_out = gr.Checkbox(False, label="Leave out this step's own thought (an action mostly copies it)",
                                elem_id="wb-attr-leave-own")
        text_map = gr.HTML(elem_id="wb-attr-text")
    html_file = gr.File(label="Standalone HTML", interactive=False)
    with gr.Accordion("Dependency map: which earlier step drove each step", open=False):
        map_btn = gr.Button("Map every step of the run", elem_id="wb-attr-map-go")
        map_plot = gr.Plot(elem_id="wb-attr-map")
        map_table = gr.Dataframe(headers=["step", "strongest part (not its own thought)", "its score"],
                                 interactive=False)
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
    @api_params("run_id", "step", "target", "method", "granularity", "segments", *(s.name for s in app_settings()),
                request=True, progress=True)
    def attribute(*values):  # the inputs, then the session's request and a progress bar
        *inputs, request, progress = values
        return compute_attribution(ctx, *inputs, progress=progress, cancel=_cancel_event(request))

    def attribution_map(run_id: str, method: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        return compute_map(ctx, run_id, method, progress=progress, cancel=_cancel_event(request))

    go_btn.click(attribute, [run_id, step, target, method, granularity, segments, *settings],
                 [result_md, heat, bars, html_file, text_map, inside_pick, inside_plot, last], api_name="attribute",
                 concurrency_limit=1)
    stop_btn.click(stop_attribution, None, [result_md], api_name="attribution_stop", queue=False)
    inside_pick.change(inside_bars, [last, inside_pick], [inside_plot], api_name=False, show_progress="hidden")
    leave_out.change(lambda r, own: r.text_map_html(own) if r is not None else "", [last, leave_out], [text_map],
                     api_name=False, show_progress="hidden")
    map_btn.click(attribution_map, [run_id, method], [map_plot, map_table], api_name="attribution_map",
                  concurrency_limit=1)
    ground_btn.click(lambda r, m: compute_grounding(ctx, r, m), [run_id, method], [ground_plot],
                     api_name="grounding", concurrency_limit=1)
    diff_btn.click(lambda r, s, t, o: compute_diff(ctx, r, s, t, o), [run_id, step, target, other],
                   [diff_plot, diff_table], api_name="attribution_diff", concurrency_limit=1)
    return {"run_id": run_id, "step": step, "summary": summary}
