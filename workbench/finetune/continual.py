"""Continual learning: fine-tune on one task family, then another, and measure what was forgotten.

Phase 1 trains on ``config.data`` for ``config.steps``; phase 2 continues from its adapter on
``config.continual_data`` for as many steps, mixing in ``replay_fraction`` of phase-1 trajectories
(``replay_data``, by default phase 1's own data). Before and after phase 2 the agent runs the
phase-1 family's held-out tasks: forgetting is the drop in its success rate.

    >>> cfg = FineTuneConfig(data="demo:train:single_hop", continual_data="demo:train:numeric",
    ...                      replay_fraction=0.2)                                         # doctest: +SKIP
    >>> continual(cfg)["forgetting"]                                                      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from .config import FineTuneConfig

__all__ = ["continual", "family_probe"]


def family_probe(data_spec: str) -> str:
    """The held-out probe of a training family: demo:train:TYPES -> demo:dev:TYPES (demo2:train -> demo2:dev)."""
    for world in ("demo", "demo2"):
        if data_spec.startswith(f"{world}:"):
            _split, _, types = data_spec[len(world) + 1:].partition(":")
            return f"{world}:dev:{types}" if types else f"{world}:dev"
    return "demo:dev"


def continual(cfg: FineTuneConfig, on_metric: Callable | None = None, should_stop: Callable | None = None,
              log: Callable[[str], None] = print, lm_factory: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Run both phases; returns the success rates, the forgetting and both adapter folders."""
    from .loop import probe, train

    emit = on_metric or (lambda step, metrics: None)
    out = Path(cfg.output_dir) if cfg.output_dir else None
    first_probe, second_probe = family_probe(cfg.data), family_probe(cfg.continual_data)
    one = replace(cfg, continual_data="", replay_data="", replay_fraction=0.0, probe=first_probe,
                  output_dir=str(out / "phase1") if out else "")
    log(f"phase 1: {cfg.data} for {cfg.steps} steps")
    r1 = train(one, lm=lm_factory() if lm_factory else None, on_metric=emit, should_stop=should_stop, log=log)
    before = r1.final.get("probe_success", 0.0)
    two = replace(cfg, data=cfg.continual_data, continual_data="", init_from=r1.adapter_dir,
                  replay_data=cfg.replay_data or (cfg.data if cfg.replay_fraction else ""), probe=second_probe,
                  output_dir=str(out / "phase2") if out else "")
    log(f"phase 2: {cfg.continual_data} for {cfg.steps} steps, replay {cfg.replay_fraction:.0%} of phase 1")
    shifted = lambda step, metrics: emit(cfg.steps + step, metrics)  # noqa: E731 — one step axis for both phases
    lm2 = lm_factory() if lm_factory else None
    r2 = train(two, lm=lm2, on_metric=shifted, should_stop=should_stop, log=log)
    from ..models import load_model

    tuned = load_model(r2.adapter_dir, device="cpu", cache=False)
    after = probe(tuned.model, tuned, replace(cfg, probe=first_probe))["probe_success"]
    result = {"first_family": cfg.data, "second_family": cfg.continual_data, "replay_fraction": cfg.replay_fraction,
              "first_success_before": before, "first_success_after": after,
              "second_success": r2.final.get("probe_success", 0.0), "forgetting": before - after,
              "phase1_adapter": r1.adapter_dir, "adapter_dir": r2.adapter_dir, "steps": 2 * cfg.steps}
    emit(2 * cfg.steps, {"first_success_before": before, "first_success_after": after,
                         "forgetting": before - after})
    log(f"forgetting: {before:.2f} -> {after:.2f} on {first_probe}")
    return result
