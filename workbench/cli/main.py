"""The ``workbench`` command: serve the app, run a task, build the demo world, browse stored runs.

    workbench serve [--host 127.0.0.1] [--port 7860] [--model SPEC]
    workbench run "When was Skelnandun founded?" [--mode react|cot|act|direct] [--model SPEC] [--json]
    workbench eval --suite demo:test --modes react,cot,act,direct [--model SPEC] [--limit N]
    workbench evals
    workbench attribute RUN_ID [--step N] [--target action] [--method surrogate] [--granularity sentence] [--map]
    workbench fork RUN_ID --step N [--thought|--action|--observation|--task TEXT | --token POS:TOKEN]
    workbench counterfactual --suite demo:test [--modes react,cot] [--model SPEC ...] [--limit N]
    workbench prompt list|show|diff|export|import|validate
    workbench world [--world demo|demo2] [--seed 0] [--out demo_data]
    workbench runs [--limit 20] [--search TEXT]
    workbench show RUN_ID [--json]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from ..errors import WorkbenchError
from ..world.registry import WORLD_NAMES, world_by_name, world_folder, write_named_world
from .attribute import add_attribute_parser, cmd_attribute
from .finetune import add_finetune_parser, cmd_finetune
from .fork import add_counterfactual_parser, add_fork_parser, cmd_counterfactual, cmd_fork
from .lab import add_lab_parser, cmd_lab
from .prompt import add_prompt_parser, cmd_prompt

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="ReAct Workbench: watch language models reason and act.")
    parser.add_argument("--store", help="path of the run store (SQLite); default: the user data folder")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="start the web app")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--store", default=argparse.SUPPRESS,  # also after `serve`, as `bootstrap.py serve --store` passes it
                       help="path of the run store (SQLite); default: the user data folder")
    serve.add_argument("--model", default=None, help="default model: a Hugging Face id, a local folder, or 'tiny'")
    serve.add_argument("--also", action="append", default=[], metavar="MODEL", help="another model to offer (repeatable)")
    serve.add_argument("--no-preload", action="store_true", help="load the model on the first run instead of at start")
    serve.add_argument("--corpus", action="append", default=[], metavar="PATH",
                       help="a folder or file of documents (JSONL, .txt, .md, .pdf) offered as a knowledge source "
                            "(repeatable)")
    serve.add_argument("--split-headings", action="store_true",
                       help="read Markdown in --corpus folders as an article per heading")

    add_lab_parser(sub)

    run = sub.add_parser("run", help="run one instruction and print its steps as they happen")
    run.add_argument("instruction")
    run.add_argument("--mode", default="react", choices=["react", "cot", "act", "direct"])
    run.add_argument("--model", default=None, help="a Hugging Face id, a local folder, or 'tiny'")
    run.add_argument("--prompt", default=None, help="a prompt preset, a saved name or version id, or a .yaml file")
    run.add_argument("--corpus", default=None, metavar="PATH_OR_NAME",
                     help="the knowledge to search: a file or folder of documents (JSONL, .txt, .md, .pdf), the "
                          f"name of a corpus uploaded in the app, or a demo world ({', '.join(WORLD_NAMES)}; "
                          "default: demo)")
    run.add_argument("--split-headings", action="store_true", help="read Markdown as an article per heading")
    run.add_argument("--retrieval", default="bm25", choices=["bm25", "dense", "hybrid"],
                     help="how search ranks articles when no title matches exactly")
    run.add_argument("--examples", type=int, default=None, help="keep the prompt's first N few-shot examples (0: none)")
    run.add_argument("--dynamic-k", type=int, default=0,
                     help="use the K demo train trajectories nearest to the instruction as examples")
    run.add_argument("--max-steps", type=int, default=8)
    run.add_argument("--max-new-tokens", type=int, default=128)
    run.add_argument("--temperature", type=float, default=0.0)
    run.add_argument("--verifier", default="", metavar="FOLDER",
                     help="a trained answer verifier (a verifier fine-tune's output_dir/verifier): a finish that no "
                          "observation supports is refused once")
    run.add_argument("--verifier-threshold", type=float, default=0.5, help="support below which a finish is refused")
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--json", action="store_true", help="print the whole trace as JSON at the end (steps go to stderr)")
    run.add_argument("--no-save", action="store_true", help="do not save the run in the store")

    ev = sub.add_parser("eval", help="evaluate modes on a task suite; prints the aggregate table",
                        description="Runs every task in every mode. Runs again with the same settings resume. "
                                    "Under `accelerate launch --num_processes N` the processes share the tasks.")
    ev.add_argument("--suite", default="demo:test",
                    help="demo:SPLIT[:TYPES], demo2:SPLIT, demo-fever:SPLIT, hotpotqa:PATH, fever:PATH, jsonl:PATH, a file, "
                         "or wiki-style (real entities in Wikipedia's style, in a clone)")
    ev.add_argument("--modes", default="react,cot,act,direct",
                    help="comma-separated: react, cot, act, direct, cot_sc, react_cot_sc, cot_sc_react")
    ev.add_argument("--model", default=None, help="a Hugging Face id, a local folder, or 'tiny'")
    ev.add_argument("--limit", type=int, default=None, help="at most this many tasks, spread over task types")
    ev.add_argument("--k", type=int, default=5, help="samples for cot_sc and the hybrids")
    ev.add_argument("--max-steps", type=int, default=8)
    ev.add_argument("--max-new-tokens", type=int, default=128)
    ev.add_argument("--run-id", default=None, help="continue this evaluation (default: derived from the settings)")
    ev.add_argument("--fresh", action="store_true", help="start a new evaluation instead of resuming")
    ev.add_argument("--batch", type=int, default=None,
                    help="tasks decoded together in one forward pass per token (default: 8 on a CPU, 16 on a GPU, "
                         "1 for models the batched path does not cover); results are the same as one at a time")
    ev.add_argument("--by-type", action="store_true", help="also print the table by mode and task type")
    ev.add_argument("--csv", default=None, help="write the per-task table to this CSV file")
    ev.add_argument("--json", default=None, help="write the rows and the aggregate to this JSON file")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("evals", help="list evaluation runs, newest first")

    add_attribute_parser(sub)

    add_prompt_parser(sub)
    add_fork_parser(sub)
    add_counterfactual_parser(sub)

    world = sub.add_parser("world", help="generate a demo world (encyclopedia and task suites) and write it to a folder")
    world.add_argument("--world", default="demo", choices=WORLD_NAMES, help="which world (default: demo)")
    world.add_argument("--seed", type=int, default=0)
    world.add_argument("--out", default=None, help="the folder (default: demo_data for demo, demo2_data for demo2)")

    runs = sub.add_parser("runs", help="list stored runs, newest first")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--search", default="")

    show = sub.add_parser("show", help="print a stored run")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    add_finetune_parser(sub)
    return parser


def _print_step(step, out) -> None:
    if step.kind == "halt":
        print(f"[halt] {step.error}", file=out)
        return
    head = f"--- step {step.index} ({step.generation.generated_tokens} tokens, {step.t_total:.2f}s)"
    print(head, file=out)
    if step.thought:
        print(f"Thought: {step.thought}", file=out)
    if step.action:
        print(f"Action: {step.action}", file=out)
    if step.error:
        print(f"Error: {step.error}", file=out)
    elif step.observation is not None:
        print(f"Observation: {step.observation}", file=out)
    if step.answer is not None:
        print(f"Answer: {step.answer}", file=out)
    out.flush()


def _corpus_arg(value: str, split_headings: bool, store_path) -> Any:
    """A path of documents, a demo world's name (demo, demo2), or the name of a corpus stored by the app."""
    from pathlib import Path

    from ..documents import load_corpus_path

    if Path(value).expanduser().exists():
        return load_corpus_path(Path(value).expanduser(), split_headings=split_headings)
    if value in WORLD_NAMES:
        return world_by_name(value).corpus
    from ..errors import InputError
    from ..store.runs import Store

    store = Store(store_path)
    names = [row["name"] for row in store.list_corpora()]
    if value not in names:
        stored = f"stored: {', '.join(names)}" if names else "none is stored yet"
        raise InputError(f"--corpus {value!r} is not a file or folder, a demo world ({', '.join(WORLD_NAMES)}) "
                         f"or a corpus uploaded in the app ({stored}). Pass a path of documents (.jsonl, .txt, .md, "
                         ".pdf, or a folder of them), a demo world's name or a stored name.")
    return store.load_corpus(value)


def _cmd_run(args, store_path) -> int:
    from ..agent import Agent
    from ..models import load_model
    from ..store.runs import Store

    out = sys.stderr if args.json else sys.stdout
    prompt = None
    if args.prompt:  # a preset, a saved version or a .yaml file: every problem listed before anything runs
        from ..errors import PromptError
        from ..prompt_lab import resolve_prompt_ref, validate_prompt

        prompt = resolve_prompt_ref(Store(store_path), args.prompt)[0]
        problems = validate_prompt(prompt)
        if problems:
            raise PromptError(f"{args.prompt}: " + "; ".join(map(str, problems)))
    print(f"Loading model {args.model or 'SmolLM2-135M-Instruct (embedded)'} …", file=sys.stderr, flush=True)
    lm = load_model(args.model)
    corpus = _corpus_arg(args.corpus, args.split_headings, store_path) if args.corpus else None
    agent = Agent(lm, corpus=corpus, prompt=prompt, mode=args.mode, max_steps=args.max_steps,
                  max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                  retrieval=args.retrieval, n_examples=args.examples, dynamic_examples=args.dynamic_k,
                  verifier=args.verifier, verifier_threshold=args.verifier_threshold)
    for trace in agent.stream(args.instruction):
        _print_step(trace.steps[-1], out)
    print(f"=== answer: {trace.answer!r} (ended: {trace.stop_reason}, {len(trace.steps)} steps, "
          f"{trace.generated_tokens} tokens, {trace.wall_time:.1f}s)", file=out, flush=True)
    if not args.no_save:
        try:
            Store(store_path).save_trace(trace)
            print(f"saved as run {trace.id}", file=sys.stderr)
        except WorkbenchError as err:
            print(f"warning: the run was not saved: {err}", file=sys.stderr)
    if args.json:
        print(trace.to_json(indent=1))
    return 0


def _cmd_eval(args) -> int:
    from ..evaluation import EvalConfig, evaluate
    from ..models import load_model
    from ..store.runs import Store

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    config = EvalConfig(max_steps=args.max_steps, max_new_tokens=args.max_new_tokens, sc_samples=args.k)
    lm = load_model(args.model)
    result = evaluate(args.suite, modes, lm, config=config, store=Store(args.store), run_id=args.run_id,
                      limit=args.limit, fresh=args.fresh, progress=not args.quiet,
                      batch=args.batch)
    import os

    if os.environ.get("RANK", "0") != "0":  # under accelerate, the main process reports
        return 0
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"evaluation {result.run_id}: {args.suite} · {len(result.rows)} results · model {result.model}")
        print(result.aggregate().to_string(index=False))
        if args.by_type:
            print(result.aggregate(by_type=True).to_string(index=False))
    if args.csv:
        print(f"wrote {result.to_csv(args.csv)}")
    if args.json:
        print(f"wrote {result.to_json(args.json)}")
    return 0


def _cmd_attribute(args) -> int:
    return cmd_attribute(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from ..app import launch

            print(f"Starting ReAct Workbench on http://{args.host}:{args.port} …", flush=True)
            launch(model=args.model, host=args.host, port=args.port, store=args.store, models=args.also,
                   preload=not args.no_preload, corpora=args.corpus, split_headings=args.split_headings)
            return 0
        if args.command == "run":
            return _cmd_run(args, args.store)
        if args.command == "lab":
            return cmd_lab(args)
        if args.command == "eval":
            return _cmd_eval(args)
        if args.command == "prompt":
            return cmd_prompt(args)
        if args.command == "attribute":
            return _cmd_attribute(args)
        if args.command == "fork":
            return cmd_fork(args, _print_step)
        if args.command == "counterfactual":
            return cmd_counterfactual(args)
        if args.command == "world":
            path = write_named_world(args.world, args.seed, args.out or world_folder(args.world))
            print(f"wrote the {args.world} world (seed {args.seed}) to {path}")
            return 0
        from ..store.runs import Store

        store = Store(args.store)
        if args.command == "finetune":
            return cmd_finetune(args, store)
        if args.command == "evals":
            import pandas as pd

            rows = store.list_evals()
            print(pd.DataFrame(rows).to_string(index=False) if rows else "no evaluations stored yet")
            return 0
        if args.command == "runs":
            df = store.runs_tree_dataframe(limit=args.limit, search=args.search)  # forks under their parent
            print(df.to_string(index=False) if len(df) else "no runs stored yet")
            return 0
        if args.command == "show":
            trace = store.get_trace(args.run_id)
            if args.json:
                print(trace.to_json(indent=1))
            else:
                print(f"Task: {trace.task}\nMode: {trace.mode} · model {trace.model} · ended {trace.stop_reason}")
                for step in trace.steps:
                    _print_step(step, sys.stdout)
                print(f"=== answer: {trace.answer!r}")
            return 0
    except WorkbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
