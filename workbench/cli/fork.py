"""`workbench fork`: fork a stored run at a step with one thing changed, and show what changed;
`workbench counterfactual`: swap the fact each answer of a suite came from and see whether it follows.

    workbench fork RUN_ID --step 2 --observation "Varnholt was founded in 1523."
    workbench fork RUN_ID --step 1 --thought "I should search for the river first."
    workbench fork RUN_ID --step 3 --action "search[Drume]"
    workbench fork RUN_ID --step 1 --task "When was Drume founded?"
    workbench fork RUN_ID --step 2 --token 4:search       # token 4 of step 2 replaced by its alternative 'search'
    workbench fork RUN_ID --step 2                        # no change: a greedy run comes out the same

The part of the run before the edit is replayed from the stored run, not generated again. The fork
is stored with its parent's id, the step and the change; `workbench runs` lists it under its parent.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_fork_parser", "cmd_fork", "add_counterfactual_parser", "cmd_counterfactual"]


def add_fork_parser(sub: Any) -> None:
    """Add the ``fork`` sub-command to ``sub`` (the parser's add_subparsers() object)."""
    fk = sub.add_parser("fork", help="fork a stored run at a step with one change and compare it to the original",
                        formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    fk.add_argument("run_id")
    fk.add_argument("--step", type=int, required=True, help="the step to change (1-based)")
    change = fk.add_mutually_exclusive_group()
    change.add_argument("--thought", help="replace the step's thought; the model writes the action after it")
    change.add_argument("--action", help="replace the step's action, e.g. 'search[Drume]'")
    change.add_argument("--observation", help="replace the step's observation (the model reads it as data)")
    change.add_argument("--task", help="run the same settings on another instruction")
    change.add_argument("--token", metavar="POS:TOKEN",
                        help="replace generated token POS of the step by TOKEN (an id, or one of its recorded "
                             "alternatives as text) and generate the rest of the step from there")
    fk.add_argument("--model", default=None, help="the run's own model unless given (a different one reruns the task)")
    fk.add_argument("--corpus", default=None, metavar="NAME", help="a stored corpus name (default: the run's own)")
    fk.add_argument("--json", action="store_true", help="print the fork's trace as JSON at the end")
    fk.add_argument("--no-save", action="store_true", help="do not save the fork in the store")


def _token(value: str) -> tuple[int, int | str]:
    from ..errors import InputError

    pos, sep, tok = value.partition(":")
    if not sep or not pos.strip().isdigit() or not tok:
        raise InputError(f"--token takes POSITION:TOKEN, e.g. 4:search or 4:1234; got {value!r}.")
    return int(pos), (int(tok) if tok.strip().lstrip("-").isdigit() else tok)


def cmd_fork(args: Any, print_step: Any) -> int:
    """Run `workbench fork`; ``print_step(step, out)`` prints a step as `workbench run` does."""
    from ..interventions import compare_fork, parent_corpus, stream_fork
    from ..knowledge import KnowledgeSources
    from ..models import load_model
    from ..prompt_experiments import text_diff
    from ..store.runs import Store

    store = Store(args.store)
    parent = store.get_trace(args.run_id)
    change = {k: getattr(args, k) for k in ("thought", "action", "observation", "task") if getattr(args, k) is not None}
    if args.token:
        change["token"] = _token(args.token)
    spec = args.model or parent.meta.get("model_source") or None
    print(f"Loading model {spec or 'SmolLM2-135M-Instruct (embedded)'} …", file=sys.stderr, flush=True)
    lm = load_model(None if spec in ("", "embedded") else spec)
    sources = KnowledgeSources(store)
    corpus = sources.get(f"stored:{args.corpus}") if args.corpus else parent_corpus(parent, sources)
    out = sys.stderr if args.json else sys.stdout
    child = None
    for child in stream_fork(parent, args.step, lm, corpus=corpus, **change):
        print_step(child.steps[-1], out)
    assert child is not None
    cmp = compare_fork(parent, child)
    o = cmp.outcomes()
    print(f"=== fork of {parent.id} at step {args.step}: answer {o['answers'][1]!r} (original {o['answers'][0]!r}), "
          f"ended {o['stop_reasons'][1]} (original {o['stop_reasons'][0]})", file=out)
    for d in cmp.steps:
        if d.index >= args.step and d.row()["thought_diff"] + d.row()["action_diff"]:
            r = d.row()
            print(f"step {d.index}: thought {text_diff(r['thought_a'], r['thought_b']) or '—'} · "
                  f"action {text_diff(r['action_a'], r['action_b']) or '—'}", file=out)
    if not args.no_save:
        store.save_trace(child, tags="fork")
        print(f"saved as run {child.id} (a fork of {parent.id})", file=sys.stderr)
    if args.json:
        print(child.to_json(indent=1))
    return 0


def add_counterfactual_parser(sub: Any) -> None:
    """Add ``counterfactual`` (what if the observation had said otherwise?) to ``sub``."""
    cf = sub.add_parser("counterfactual", help="swap the fact each answer came from and see whether it follows",
                        description="For each task: run it, find the observation its answer came from, swap that "
                                    "fact for another value of the same attribute (the demo world's), fork the run "
                                    "there and see whether the answer follows. cot runs get the fact (then the swap) "
                                    "in the question's context. Prints the share that follows, per mode and model.")
    cf.add_argument("--suite", default="demo:test", help="a suite spec, as for `workbench eval`")
    cf.add_argument("--modes", default="react,cot", help="comma-separated: react, cot")
    cf.add_argument("--model", action="append", default=None, metavar="SPEC",
                    help="a model (repeatable: compare them); default: the shipped adapter, else the embedded model")
    cf.add_argument("--limit", type=int, default=None, help="at most this many tasks, spread over task types")
    cf.add_argument("--max-steps", type=int, default=8)
    cf.add_argument("--batch", type=int, default=None,
                    help="rows worked on at once, their decoding shared (default: 8 on a CPU, 16 on a GPU)")
    cf.add_argument("--json", default=None, help="write the rows and the shares to this JSON file")
    cf.add_argument("--no-save", action="store_true", help="do not save the runs and forks in the store")


def cmd_counterfactual(args: Any) -> int:
    import json
    from pathlib import Path

    from ..counterfactual import counterfactual_suite, follow_table
    from ..models import load_model, shipped_adapter
    from ..store.runs import Store

    specs = args.model or [str(shipped_adapter()) if shipped_adapter() else None]
    models = {}
    for spec in specs:
        lm = load_model(spec)
        models[lm.name] = lm
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    store = None if args.no_save else Store(args.store)
    rows = []
    for row in counterfactual_suite(args.suite, models, modes=modes, limit=args.limit, max_steps=args.max_steps,
                                    store=store, batch=args.batch):
        rows.append(row)
        what = row.get("outcome") or f"skipped ({row.get('skipped')})"
        print(f"{row['task_id']} {row.get('mode')} · {row['label']}: {row.get('answer')!r} -> "
              f"{row.get('fork_answer')!r} with {row.get('replacement')!r}: {what}", file=sys.stderr, flush=True)
    shares = follow_table(rows)
    print(shares.to_string(index=False))
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": args.suite, "rows": rows,
                                               "shares": shares.to_dict("records")}, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0
