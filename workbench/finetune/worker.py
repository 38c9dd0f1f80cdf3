"""The fine-tune worker process: ``python -m workbench.finetune.worker JOB_ID --store PATH``.

Started by ``workbench.finetune.jobs.submit``; runs one recorded job and exits. Its output is the
job's log.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workbench.finetune.worker")
    ap.add_argument("job_id")
    ap.add_argument("--store", required=True, help="the SQLite run store that holds the job")
    args = ap.parse_args(argv)
    from ..store.runs import Store
    from .jobs import run_job

    job = run_job(args.job_id, Store(args.store))
    print(f"job {args.job_id}: {job['state'] if job else 'missing'}", flush=True)
    return 0 if job and job["state"] in ("done", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
