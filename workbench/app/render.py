"""Pure functions that turn Steps and Traces into HTML and Markdown for the app.

No gradio here, so unit tests call them directly. Every piece of model or user text goes through
``html.escape``: the app shows model output, it never interprets it.
"""

from __future__ import annotations

import html
import math

from ..types import Step, Trace
from ..viz import KIND_COLORS

__all__ = ["step_html", "timeline_html", "prompt_html", "status_markdown", "tokens_html", "CSS"]

CSS = """
.wb-timeline { display: flex; flex-direction: column; gap: 8px; }
.wb-step { border: 1px solid #d0d0d0; border-radius: 8px; padding: 8px 12px; background: var(--block-background-fill); }
.wb-step-head { font-size: 0.8em; color: #777; margin-bottom: 4px; }
.wb-row { margin: 2px 0; white-space: pre-wrap; word-break: break-word; }
.wb-label { display: inline-block; min-width: 92px; font-weight: 600; }
.wb-thought .wb-label { color: #2e7d32; }
.wb-action .wb-label { color: #e65100; }
.wb-action code { background: #fff3e0; color: #bf360c; padding: 0 4px; border-radius: 4px; }
.wb-observation { background: #e3f2fd; color: #0d47a1; border-radius: 6px; padding: 2px 6px; }
.wb-observation .wb-label { color: #1565c0; }
.wb-answer { background: #fce4ec; color: #880e4f; border-radius: 6px; padding: 2px 6px; font-weight: 600; }
.wb-error { background: #fff8e1; color: #8d6e63; border-left: 3px solid #ffb300; padding: 2px 6px; }
.wb-seg { white-space: pre-wrap; border-radius: 3px; }
.wb-prompt { font-family: ui-monospace, monospace; font-size: 0.85em; line-height: 1.35; max-height: 520px;
             overflow: auto; border: 1px solid #ddd; padding: 8px; border-radius: 6px; }
.wb-legend span { display: inline-block; margin-right: 10px; font-size: 0.8em; padding: 0 6px; border-radius: 4px; }
.wb-tok { display: inline-block; margin: 1px; padding: 0 2px; border-radius: 3px; font-family: ui-monospace, monospace;
          font-size: 0.85em; white-space: pre; }
"""


def _e(text: str | None) -> str:
    return html.escape(text or "", quote=True)


def step_html(step: Step) -> str:
    """One step as a card: thought, action, observation (or answer), each visually distinct."""
    if step.kind == "halt":
        return f'<div class="wb-step wb-halt"><div class="wb-row wb-error">⚠ {_e(step.error)}</div></div>'
    rows = []
    if step.thought:
        rows.append(f'<div class="wb-row wb-thought"><span class="wb-label">Thought</span>{_e(step.thought)}</div>')
    if step.action is not None:
        rows.append(f'<div class="wb-row wb-action"><span class="wb-label">Action</span><code>{_e(str(step.action))}</code></div>')
    if step.error:
        rows.append(f'<div class="wb-row wb-error"><span class="wb-label">Problem</span>{_e(step.error)}</div>')
    if step.observation is not None and step.observation != step.error:
        rows.append(f'<div class="wb-row wb-observation"><span class="wb-label">Observation</span>{_e(step.observation)}</div>')
    if step.answer is not None:
        rows.append(f'<div class="wb-row wb-answer"><span class="wb-label">Answer</span>{_e(step.answer)}</div>')
    if not rows:
        rows.append(f'<div class="wb-row">{_e(step.completion) or "<i>(no output)</i>"}</div>')
    head = (f"Step {step.index} · {step.generated_tokens} tokens ({step.accepted_tokens} by lookahead) · "
            f"{step.t_total:.2f} s · prompt {step.reused_tokens} cached + {step.prefill_tokens} new tokens")
    return f'<div class="wb-step" data-step="{step.index}"><div class="wb-step-head">{head}</div>{"".join(rows)}</div>'


def timeline_html(trace: Trace | None, running: bool = False) -> str:
    """All steps of a trace, newest last; a spinner line while the run is going."""
    if trace is None:
        return '<div class="wb-timeline"><i>No run yet: type an instruction and press Run.</i></div>'
    cards = [f'<div class="wb-row"><b>Task:</b> {_e(trace.task)}</div>'] + [step_html(s) for s in trace.steps]
    if running:
        cards.append('<div class="wb-row wb-running"><i>… thinking</i></div>')
    return f'<div class="wb-timeline">{"".join(cards)}</div>'


def status_markdown(trace: Trace | None) -> str:
    """One line: answer, why the run ended, steps, tokens and time."""
    if trace is None:
        return ""
    answer = trace.answer if trace.answer is not None else "—"
    gold = f" · gold **{trace.gold}**" if trace.gold else ""
    return (f"**Answer:** {answer}{gold} · ended: `{trace.stop_reason or 'running'}` · {len(trace.steps)} steps · "
            f"{trace.generated_tokens} tokens · {trace.wall_time:.1f} s · model `{trace.model}` · run `{trace.id}`")


def prompt_html(step: Step) -> str:
    """The exact prompt of a step, each segment coloured by kind; hover shows its label and tokens."""
    legend = "".join(f'<span style="background:{c}33;border:1px solid {c}">{k}</span>' for k, c in KIND_COLORS.items())
    parts = []
    for seg in step.prompt_segments:
        color = KIND_COLORS.get(seg.kind, "#999999")
        title = f"{seg.label} ({seg.kind}, tokens {seg.start}–{seg.end})"
        parts.append(f'<span class="wb-seg" title="{_e(title)}" style="background:{color}22">{_e(seg.text)}</span>')
    return f'<div class="wb-legend">{legend}</div><div class="wb-prompt">{"".join(parts)}</div>'


def tokens_html(step: Step) -> str:
    """The generated tokens, shaded by the probability the model gave each one."""
    if not step.tokens:
        return "<i>No tokens were generated in this step.</i>"
    spans = []
    for tok, lp in zip(step.tokens, step.logprobs or [0.0] * len(step.tokens)):
        p = math.exp(lp)
        spans.append(f'<span class="wb-tok" title="p = {p:.3f}" style="background:rgba(46,125,50,{0.15 + 0.6 * p:.2f})">'
                     f"{_e(tok)}</span>")
    return "".join(spans)
