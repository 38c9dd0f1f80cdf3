"""`workbench finetune`: run a fine-tune from a TOML config with a progress bar, or manage jobs.

    workbench finetune --config run.toml                 train here, progress bar, metrics to the store
    workbench finetune --config run.toml --set steps=50  override settings
    workbench finetune --data hotpotqa:train.json        train on gold trajectories built from a HotpotQA-format file
    workbench finetune --config run.toml --background    start a worker process and return its job id
    workbench finetune --config run.toml --processes 2   accelerate launch with 2 processes
    workbench finetune --list | --status JOB | --cancel JOB | --write-config run.toml | --export-runs out.jsonl
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ConfigError

__all__ = ["add_finetune_parser", "cmd_finetune"]


def add_finetune_parser(sub: Any) -> None:
    ft = sub.add_parser("finetune", help="fine-tune a model on ReAct trajectories (or the MiniLM verifier)",
                        formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    ft.add_argument("--config", help="a TOML file of FineTuneConfig settings")
    ft.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting (repeatable)")
    ft.add_argument("--data", metavar="SPEC", help="training trajectories: demo:train, demo2:train, hotpotqa:PATH, "
                    "a .jsonl file or store:RUN,RUN (the same as --set data=SPEC)")
    ft.add_argument("--background", action="store_true", help="start a worker process and return at once")
    ft.add_argument("--processes", type=int, default=1, help="processes under accelerate launch (DDP)")
    ft.add_argument("--list", action="store_true", help="list jobs, newest first")
    ft.add_argument("--status", metavar="JOB", help="a job's state and last metrics")
    ft.add_argument("--cancel", metavar="JOB", help="ask a running job to stop")
    ft.add_argument("--write-config", metavar="PATH", help="write the default config as TOML and exit")
    ft.add_argument("--export-runs", metavar="PATH", help="write the store's finished react runs as training JSONL")


def _config(args: Any):
    import tomllib

    from ..finetune import FineTuneConfig

    data: dict[str, Any] = {}
    if args.config:
        data = FineTuneConfig.from_toml(args.config).to_dict()
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. --set steps=50.")
        try:
            data[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            data[key.strip()] = value  # a bare string
    if getattr(args, "data", None):
        data["data"] = args.data
    return FineTuneConfig.from_dict(data)


def cmd_finetune(args: Any, store: Any) -> int:
    from ..finetune import cancel, job_log, list_jobs, refresh, run_job, submit, wait

    if args.write_config:
        from pathlib import Path

        from ..finetune import FineTuneConfig

        Path(args.write_config).write_text(FineTuneConfig().to_toml(), encoding="utf-8")
        print(f"wrote {args.write_config}")
        return 0
    if args.list:
        import pandas as pd

        rows = [{"id": j["id"], "state": j["state"], "task": j["kind"], "name": j["name"], "error": j["error"][:60]}
                for j in list_jobs(store)]
        print(pd.DataFrame(rows).to_string(index=False) if rows else "no fine-tune jobs yet")
        return 0
    if args.cancel:
        print("cancel requested" if cancel(args.cancel, store) else "that job has already ended")
        return 0
    if args.status:
        job = refresh(args.status, store)
        points = store.job_metrics(args.status)
        last: dict[str, Any] = {}
        for p in points:
            last[p["name"]] = (p["step"], p["value"])
        print(f"{job['id']}: {job['state']} {job['error']}")
        for name, (step, value) in sorted(last.items()):
            print(f"  {name:24s} {value:10.4f}  (step {step})")
        return 0
    if args.export_runs:
        from ..finetune import export_trajectories, traces_from_store

        traces = traces_from_store(store)
        n = export_trajectories(traces, args.export_runs)
        print(f"wrote {n} trajectories (of {len(traces)} react runs) to {args.export_runs}")
        return 0
    if not args.config and not args.set:
        raise ConfigError("Pass --config run.toml (write one with --write-config run.toml) or settings with --set.")
    cfg = _config(args)
    if args.background or args.processes > 1:
        job_id = submit(cfg, store, processes=args.processes)
        print(f"job {job_id} started; follow it with `workbench finetune --status {job_id}` or in the app")
        if args.background:
            return 0
        job = wait(job_id, store, timeout=7 * 24 * 3600)
        print(job_log(job_id, store, lines=5))
    else:
        from ..finetune.jobs import record_job

        job_id, _ = record_job(cfg, store)
        store.update_job(job_id, pid=os.getpid())
        job = run_job(job_id, store)
    result = job.get("result") or {}
    print(f"job {job['id']}: {job['state']}{' — ' + job['error'] if job['error'] else ''}")
    if result.get("adapter_dir"):
        print(f"result: {result['adapter_dir']} (use it with --model {result['adapter_dir']})")
    return 0 if job["state"] == "done" else 1

