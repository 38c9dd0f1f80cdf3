"""Load test: concurrent sessions drive the real app through gradio_client on 127.0.0.1.

It starts the app the way ``workbench serve`` does (``workbench.app.launch``: the queue, the
upload limit, loopback only) on a free port with a fresh store, then opens N sessions, each its
own ``gradio_client.Client`` (so its own session hash), and has each run R agent runs through the
Run tab's ``/run`` endpoint, each with a question no other session asks. It checks that no call
failed, that every run is in the store, and that each session got back its own runs only (the
trace id it was given holds the question it asked, and the timeline it was shown mentions no other
session's question). It reports latency per run (p50, p95, max), throughput and wall time.

It talks only to 127.0.0.1, every call has a timeout, and the whole test has a deadline after
which no new run is started: it always stops by itself.

    python bench/load.py --model tiny --sessions 8 --runs 3                 # seconds; the test suite runs this
    python bench/load.py --sessions 8 --runs 3 --out bench/results/load.json   # the embedded SmolLM2
"""

from __future__ import annotations

import argparse
import html
import json
import math
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # bench/_report.py, also when a test loads this file by path
from _report import write_report  # noqa: E402

HOST = "127.0.0.1"  # the only address this test ever talks to


@dataclass
class RunRecord:
    session: int
    question: str
    seconds: float
    run_id: str = ""
    error: str = ""
    shown_foreign: bool = False  # the timeline shown to this session mentioned another session's question


@dataclass
class LoadReport:
    model: str
    sessions: int
    runs_per_session: int
    mode: str
    max_steps: int
    records: list[RunRecord] = field(default_factory=list)
    wall_seconds: float = 0.0
    stored: int = 0  # runs found in the store afterwards
    mismatched: list[str] = field(default_factory=list)  # run ids whose stored question is not the one asked
    timed_out: bool = False

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.records if r.error]

    @property
    def latencies(self) -> list[float]:
        return sorted(r.seconds for r in self.records if not r.error)

    def percentile(self, q: float) -> float:
        """The q-th percentile (nearest rank) of the run latencies, in seconds."""
        values = self.latencies
        if not values:
            return float("nan")
        rank = max(1, min(len(values), math.ceil(q / 100 * len(values))))
        return values[rank - 1]

    @property
    def isolated(self) -> bool:
        return not self.mismatched and not any(r.shown_foreign for r in self.records)

    def summary(self) -> dict[str, Any]:
        lat = self.latencies
        return {
            "model": self.model, "sessions": self.sessions, "runs_per_session": self.runs_per_session,
            "mode": self.mode, "max_steps": self.max_steps, "runs": len(self.records), "errors": len(self.errors),
            "stored": self.stored, "sessions_isolated": self.isolated, "timed_out": self.timed_out,
            "p50_s": round(self.percentile(50), 3), "p95_s": round(self.percentile(95), 3),
            "max_s": round(max(lat), 3) if lat else None, "mean_s": round(statistics.mean(lat), 3) if lat else None,
            "wall_s": round(self.wall_seconds, 2),
            "runs_per_s": round(len(lat) / self.wall_seconds, 3) if self.wall_seconds else None,
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def serve(model: str | None, store_path: str | Path, port: int | None = None) -> tuple[Any, str]:
    """Start the app as ``workbench serve`` does, on 127.0.0.1; returns (demo, url)."""
    from workbench.app import launch

    port = port or free_port()
    demo = launch(model=model, host=HOST, port=port, store=store_path, preload=True, block=False, quiet=True)
    return demo, f"http://{HOST}:{port}/"


def questions(n: int) -> list[str]:
    """n different demo-world questions (test split), numbered so that no two sessions share one."""
    from workbench.world import load_tasks

    tasks = load_tasks("test")
    return [f"{tasks[i % len(tasks)].question} (#{i})" for i in range(n)]


def drive(url: str, sessions: int, runs: int, model_label: str, mode: str = "react", max_steps: int = 3,
          call_timeout: float = 300.0, deadline_s: float = 1800.0) -> LoadReport:
    """Run ``sessions`` concurrent clients, each doing ``runs`` runs one after another."""
    from gradio_client import Client

    if not url.startswith(f"http://{HOST}:"):
        raise ValueError(f"The load test talks only to {HOST}, not {url}.")
    report = LoadReport(model_label, sessions, runs, mode, max_steps)
    asked = questions(sessions * runs)
    mine = {s: asked[s * runs:(s + 1) * runs] for s in range(sessions)}
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s
    start = threading.Barrier(sessions)

    def session(s: int) -> None:
        client = Client(url, verbose=False)
        others = [q for k, qs in mine.items() if k != s for q in qs]
        start.wait(60)  # all sessions start together
        for question in mine[s]:
            if time.monotonic() > stop_at:
                report.timed_out = True
                return
            t0 = time.perf_counter()
            record = RunRecord(s, question, 0.0)
            try:
                job = client.submit(question, mode, model_label, max_steps, 0.0, api_name="/run")
                out = job.result(timeout=call_timeout)
                record.run_id = out[5]
                record.shown_foreign = any(q in out[0] or html.escape(q) in out[0] for q in others)
            except Exception as err:  # counted and reported: the test fails on any
                record.error = f"{type(err).__name__}: {err}"
            record.seconds = time.perf_counter() - t0
            with lock:
                report.records.append(record)

    threads = [threading.Thread(target=session, args=(s,), daemon=True, name=f"load-{s}") for s in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, stop_at - time.monotonic() + call_timeout))
    report.wall_seconds = time.perf_counter() - t0
    return report


def check_store(report: LoadReport, store: Any) -> LoadReport:
    """Fill in how many runs reached the store and which (if any) hold another question."""
    for r in report.records:
        if r.error:
            continue
        try:
            trace = store.get_trace(r.run_id)
        except Exception:
            report.mismatched.append(r.run_id or "(none)")
            continue
        report.stored += 1
        if trace.task != r.question:
            report.mismatched.append(r.run_id)
    return report


def run_load(model: str | None = "tiny", sessions: int = 8, runs: int = 3, mode: str = "react", max_steps: int = 3,
             store_path: str | Path | None = None, deadline_s: float = 1800.0) -> LoadReport:
    """Serve, drive, check, close: the whole load test."""
    from workbench.store import Store

    folder = tempfile.mkdtemp(prefix="workbench-load-")
    store_path = store_path or Path(folder) / "runs.db"
    demo, url = serve(model, store_path)
    try:
        label = demo.workbench_context.models.default
        report = drive(url, sessions, runs, label, mode, max_steps, deadline_s=deadline_s)
        report.model = label
        return check_store(report, Store(store_path))
    finally:
        demo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded",
                        help="a model spec (default: the embedded SmolLM2, not a fine-tune; 'tiny' for seconds)")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="runs per session")
    parser.add_argument("--mode", default="react")
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=1800.0, help="no new run starts after this many seconds")
    parser.add_argument("--out", default=None, help="write the summary and every run's latency here (JSON)")
    args = parser.parse_args()
    report = run_load(args.model, args.sessions, args.runs, args.mode, args.max_steps, deadline_s=args.deadline)
    summary = report.summary()
    import torch

    summary["machine"] = {"cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                          "python": platform.python_version(), "torch": torch.__version__}
    lines = [json.dumps(summary, indent=1)]
    if report.errors:
        lines += ["errors:", *(f"  {e}" for e in report.errors[:5])]
    if args.out:
        write_report(args.out, {"summary": summary, "runs": [asdict(r) for r in report.records]}, lines)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
