"""How every bench script writes its results: ``bench/results/NAME.json`` and, with lines, ``NAME.log``.

One writer, so every result file is indented UTF-8 JSON, complete or absent (written to a temporary
file and renamed: a benchmark killed mid-write, or one that rewrites its file after every row, never
leaves half a file), with the table the script printed kept beside it.

    >>> write_report("agent_cache", summary, ["| measure | value |", "|---|---|"])   # doctest: +SKIP
    PosixPath('.../bench/results/agent_cache.json')
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["RESULTS", "result_path", "write_report"]

RESULTS = Path(__file__).resolve().parent / "results"


def result_path(name: str | Path) -> Path:
    """``bench/results/NAME.json`` for a bare name; a path (with a folder or a suffix) as given."""
    path = Path(name)
    return path if path.suffix or len(path.parts) > 1 else RESULTS / f"{name}.json"


def write_report(name: str | Path, data: Any, log_lines: Iterable[str] = (), *, echo: bool = True) -> Path:
    """Write ``data`` as JSON to ``result_path(name)`` and ``log_lines`` (if any) beside it as ``.log``.

    ``echo``: also print the lines and where they went (what each script used to print by hand).
    Returns the JSON file's path.
    """
    out = result_path(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out)
    lines = list(log_lines)
    if lines:
        log = out.with_suffix(".log")
        log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if echo:
        if lines:
            print("\n".join(lines))
        print(f"\nwrote {out}" + (f" and {out.with_suffix('.log').name}" if lines else ""))
    return out
