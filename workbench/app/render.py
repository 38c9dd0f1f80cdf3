"""Pure functions that turn Steps and Traces into HTML and Markdown for the app.

No gradio here, so unit tests call them directly. Every piece of model or user text goes through
``html.escape``: the app shows model output, it never interprets it.
"""

from __future__ import annotations

import difflib
import html
import math
from typing import Any, Iterable

from ..types import Step, Trace
from ..viz import KIND_COLORS

__all__ = ["step_html", "timeline_html", "prompt_html", "status_markdown", "tokens_html", "word_diff_html",
           "step_diff_html", "outcomes_markdown", "fork_html", "pause_markdown", "CSS"]

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
    g = step.generation
    head = (f"Step {step.index} · {g.generated_tokens} tokens ({g.accepted_tokens} by lookahead) · "
            f"{step.t_total:.2f} s · prompt {g.reused_tokens} cached + {g.prefill_tokens} new tokens")
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
    g = step.generation
    if not g.tokens:
        return "<i>No tokens were generated in this step.</i>"
    spans = []
    for tok, lp in zip(g.tokens, g.logprobs or [0.0] * len(g.tokens)):
        p = math.exp(lp)
        spans.append(f'<span class="wb-tok" title="p = {p:.3f}" style="background:rgba(46,125,50,{0.15 + 0.6 * p:.2f})">'
                     f"{_e(tok)}</span>")
    return "".join(spans)


# Inline styles, so the prompt lab's diff looks the same wherever the HTML is shown (app or notebook).
_DEL = "background:#ffebee;color:#b71c1c;text-decoration:line-through;"
_INS = "background:#e8f5e9;color:#1b5e20;text-decoration:none;"
_CELL = "border:1px solid #ddd;padding:4px 6px;vertical-align:top;white-space:pre-wrap;word-break:break-word;"


def word_diff_html(a: str | None, b: str | None) -> str:
    """A word-level diff of two texts as HTML: removed words struck through in red, added ones in green.

    The same split as ``prompt_lab.text_diff`` (on whitespace); every word is escaped.
    """
    wa, wb = (a or "").split(), (b or "").split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(_e(" ".join(wa[i1:i2])))
        if op in ("delete", "replace"):
            out.append(f'<del class="wb-del" style="{_DEL}">{_e(" ".join(wa[i1:i2]))}</del>')
        if op in ("insert", "replace"):
            out.append(f'<ins class="wb-ins" style="{_INS}">{_e(" ".join(wb[j1:j2]))}</ins>')
    return " ".join(out)


def step_diff_html(rows: Iterable[dict[str, Any]], label_a: str = "A", label_b: str = "B") -> str:
    """Two runs side by side, one row per step (``StepDiff.row()`` dicts): thoughts, their word diff,
    actions, their diff and observations. Rows where the actions differ are marked."""
    heads = ["step", "thought A", "thought B", "thought diff", "action A", "action B", "action diff", "observation A",
             "observation B"]
    head = "".join(f'<th style="{_CELL}background:#f5f5f5;white-space:nowrap;">{_e(h)}</th>' for h in heads)
    body = []
    for r in rows:
        same = bool(r.get("same_action"))
        mark = "" if same else " ≠"
        style = _CELL + ("" if same else "background:#fff3e0;")
        cells = [f'<td style="{style}white-space:nowrap;"><b>{_e(str(r.get("step", "")))}{mark}</b></td>']
        for key in ("thought_a", "thought_b"):
            cells.append(f'<td style="{_CELL}">{_e(r.get(key))}</td>')
        cells.append(f'<td style="{_CELL}">{word_diff_html(r.get("thought_a"), r.get("thought_b"))}</td>')
        for key in ("action_a", "action_b"):
            cells.append(f'<td style="{_CELL}"><code>{_e(r.get(key))}</code></td>')
        cells.append(f'<td style="{_CELL}">{word_diff_html(r.get("action_a"), r.get("action_b"))}</td>')
        for key in ("observation_a", "observation_b"):
            cells.append(f'<td style="{_CELL}font-size:0.9em;">{_e(r.get(key))}</td>')
        body.append(f'<tr class="wb-diff-row{"" if same else " wb-diverge"}" data-step="{_e(str(r.get("step", "")))}">'
                    f'{"".join(cells)}</tr>')
    if not body:
        body.append(f'<tr><td style="{_CELL}" colspan="{len(heads)}"><i>Neither run has a step.</i></td></tr>')
    legend = (f'<div class="wb-diff-legend" style="margin:4px 0;font-size:0.9em;"><b>A</b> = {_e(label_a)} · '
              f'<b>B</b> = {_e(label_b)} · <del style="{_DEL}">removed in B</del> <ins style="{_INS}">added in B</ins>'
              " · ≠ the actions differ</div>")
    return (f'{legend}<table class="wb-step-diff" style="border-collapse:collapse;width:100%;font-size:0.9em;">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def _md(text: Any) -> str:
    """Model text for a Markdown table cell: escaped, on one line, no column breaks."""
    return _e("—" if text is None else str(text)).replace("|", "&#124;").replace("\n", " ")


def outcomes_markdown(outcomes: dict[str, Any], labels: tuple[str, str], run_ids: tuple[str, str] | None = None) -> str:
    """The outcomes of a comparison (``Comparison.outcomes()``) as a Markdown table and one line."""
    a, b = labels
    rows = [("answer", *outcomes["answers"]), ("stopped", *outcomes["stop_reasons"]), ("steps", *outcomes["steps"])]
    if run_ids:
        rows.append(("run", *run_ids))
    lines = [f"| | {_md(a)} | {_md(b)} |", "|---|---|---|"] + [f"| {k} | {_md(x)} | {_md(y)} |" for k, x, y in rows]
    where = outcomes.get("first_divergence")
    lines.append("")
    lines.append(("Same answer. " if outcomes.get("same_answer") else "**Different answers.** ")
                 + (f"The actions first diverge at **step {where}**." if where is not None
                    else "The actions never diverge."))
    return "\n".join(lines)


def fork_html(comparison: Any, fork_step: int) -> str:
    """A run and its fork side by side, aligned at the fork point: the steps from the fork on, with word diffs
    of thoughts and actions (steps before it are the original's, replayed, and are not repeated)."""
    rows = [d.row() for d in comparison.steps if d.index >= fork_step]
    head = (f'<div class="wb-fork-head" style="margin:4px 0;"><i>Steps 1–{fork_step - 1} are the original\'s, '
            "replayed (not generated again).</i></div>") if fork_step > 1 else ""
    return head + step_diff_html(rows, *comparison.labels)


def pause_markdown(paused: str, step: Step | None, done: bool = False) -> str:
    """What a step-by-step run waits for, in one line."""
    if done or step is None:
        return "The run has ended." if done else ""
    if paused == "action":
        return (f"⏸ **Step {step.index}**: the model wrote its action `{_md(step.action)}`; the tool has not run. "
                "Edit the action if you like, then press **Step**.")
    return (f"⏸ **Step {step.index}**: the tool answered; the model has not read it yet. Edit the observation "
            "if you like, then press **Step**.")

