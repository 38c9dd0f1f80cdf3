"""``workbench attribute``: which parts of the prompt drove a step of a stored run (or every step:
``--map``), with the map's faithfulness and cost, a progress bar, and Ctrl-C to stop."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_attribute_parser", "cmd_attribute"]


def add_attribute_parser(sub: Any) -> None:
    from ..attribution.methods import (  # the one table of methods (light: no torch, no captum)
        GRANULARITIES,
        METHODS,
    )

    at = sub.add_parser("attribute", help="which parts of the prompt drove a step of a stored run")
    at.add_argument("run_id")
    at.add_argument("--step", type=int, default=None, help="step number (default: the last step)")
    at.add_argument("--target", default="step", help="thought, action, answer or step")
    # Not argparse choices: an unknown name reaches the API, whose error lists the table's names and
    # suggests one ("ig" -> layer_integrated_gradients), with exit status 2 like every other error.
    at.add_argument("--method", default="feature_ablation", metavar="METHOD",
                    help="; ".join(f"{name}: {entry.help}" for name, entry in METHODS.items()))
    at.add_argument("--granularity", default="segment", help=f"{', '.join(GRANULARITIES)} (sentence: each segment "
                    "split into sentences; the output then also totals them per segment)")
    at.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting of the method, e.g. --set n_ablations=64 (repeatable; see the method table)")
    at.add_argument("--segments", default=None, help="comma-separated segment labels to restrict the features to")
    at.add_argument("--check-masks", type=int, default=16, help="held-out ablations for the faithfulness check (0: off)")
    at.add_argument("--map", action="store_true", help="the dependency map: every step against the parts of its prompt")
    at.add_argument("--model", default=None, help="score with this model instead of the run's own")
    at.add_argument("--html", default=None, help="write a standalone HTML page here")
    at.add_argument("--csv", default=None, help="write the tidy table here")


def _settings(pairs: list[str], method: str) -> dict[str, Any]:
    from ..attribution.methods import _all_settings
    from ..errors import ConfigError

    known = _all_settings()
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in known:
            raise ConfigError(f"--set takes NAME=VALUE with NAME one of {', '.join(known)} (got {pair!r}).")
        kind = known[name].type
        try:
            out[name] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
        except ValueError as err:
            raise ConfigError(f"--set {name}: {value!r} is not a {kind.__name__}.") from err
    return out


class _Bar:
    """A tqdm bar on stderr that follows ``progress(done, total, phase)`` calls, one bar per phase."""

    def __init__(self) -> None:
        self.bar, self.phase = None, None

    def __call__(self, done: int, total: int, phase: str) -> None:
        from tqdm.auto import tqdm

        if phase != self.phase:
            self.close()
            self.bar, self.phase = tqdm(total=total, desc=phase, unit="pass" if phase != "steps" else "step",
                                        file=sys.stderr, leave=False), phase
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_attribute(args: argparse.Namespace) -> int:
    from ..attribution.api import attribute_cached
    from ..models import load_model
    from ..store.runs import Store

    store = Store(args.store)
    trace = store.get_trace(args.run_id)
    model = load_model(args.model) if args.model else None
    settings = _settings(args.settings, args.method)
    bar = _Bar()
    try:
        if args.map:
            return _print_map(trace, args, model, settings, bar)
        steps = [s.index for s in trace.steps if s.kind != "halt" and s.generation.token_ids]
        step = args.step if args.step is not None else (steps[-1] if steps else 1)
        segments = [x.strip() for x in args.segments.split(",")] if args.segments else None
        result, cached = attribute_cached(store, trace, step, args.target, args.method, args.granularity, model,
                                          segments=segments, check_masks=args.check_masks, progress=bar, **settings)
    finally:
        bar.close()
    print(f"run {trace.id} step {step} · target {args.target} · {args.method} · {result.granularity} features "
          f"({'cached' if cached else result.cost()})")
    df = result.to_dataframe()[["label", "kind", "score"]].sort_values("score", ascending=False)
    print(df.to_string(index=False))
    if result.granularity != "segment":
        print("by segment: " + " · ".join(f"{k} {v:+.3f}" for k, v in result.segment_scores().items()))
    print("grounding: " + " · ".join(f"{g} {v:.0%}" for g, v in result.grounding().items()))
    print("faithfulness: " + (result.faithfulness.summary() if result.faithfulness else "not measured"))
    if "convergence_delta" in result.settings:
        print(f"integrated gradients' convergence delta: {result.settings['convergence_delta']:+.4f} "
              f"({result.settings['convergence_delta_share']:.1%} of the change it explains)")
    if args.html:
        from pathlib import Path

        Path(args.html).write_text(result.to_html(), encoding="utf-8")
        print(f"wrote {args.html}")
    if args.csv:
        result.to_dataframe().to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def _print_map(trace: Any, args: argparse.Namespace, model: Any, settings: dict[str, Any], bar: _Bar) -> int:
    from ..attribution.dependency import dependency_map
    from ..attribution.methods import grounding_method

    dep = dependency_map(trace, grounding_method(args.method), args.target, model, progress=bar, **settings)
    bar.close()
    df = dep.to_dataframe()
    print(f"run {trace.id} · dependency map ({dep.method}, target {dep.target}): steps × parts of their prompts")
    print(df.round(3).to_string(na_rep="·"))
    print("strongest (not its own thought): " + " · ".join(f"step {s}: {c}" for s, c in dep.strongest().items()))
    if args.csv:
        df.to_csv(args.csv)
        print(f"wrote {args.csv}")
    return 0
