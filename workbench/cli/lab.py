"""`workbench lab`: open the companion notebooks in JupyterLab, with this interpreter.

    workbench lab                                   JupyterLab on http://127.0.0.1:8888 in notebooks/
    workbench lab --port 8890 --no-browser          another port; print the URL, open no browser tab

The notebooks are the project's ``notebooks/`` folder beside the package's source tree: a clone,
or an editable install of one (``python3 bootstrap.py serve`` makes exactly that). JupyterLab and
ipykernel come with the ``app`` extra; without them the command says how to install them.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..deps import install_hint

__all__ = ["add_lab_parser", "cmd_lab", "lab_command", "missing_packages", "notebooks_dir", "NOTEBOOKS"]

# Where the notebooks are: the repository's folder next to the package (a clone or an editable install).
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NEEDED = ("jupyterlab", "ipykernel")  # the server, and the kernel the notebooks run in


def add_lab_parser(sub: Any) -> None:
    """Add the ``lab`` sub-command to ``sub`` (the parser's add_subparsers() object)."""
    lab = sub.add_parser("lab", help="open the notebooks in JupyterLab",
                         formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    lab.add_argument("--port", type=int, default=8888, help="port of the JupyterLab server (default 8888)")
    lab.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser tab; just print the URL")


def notebooks_dir() -> Path | None:
    """The project's notebooks folder, or None when the package was installed without its repository."""
    return NOTEBOOKS if NOTEBOOKS.is_dir() else None


def lab_command(folder: Path, host: str, port: int, browser: bool = True) -> list[str]:
    """The command line that serves ``folder`` in JupyterLab with the current interpreter."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={folder}", f"--ServerApp.ip={host}", f"--port={port}"]
    return cmd if browser else [*cmd, "--no-browser"]


def missing_packages() -> list[str]:
    """Those of NEEDED that are not installed here."""
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def cmd_lab(args: Any) -> int:
    """Run JupyterLab on the notebooks until it is stopped; 2 when it cannot start (the message says why)."""
    missing = missing_packages()
    if missing:
        print(f"error: `workbench lab` needs the {missing[0]} package, which is not installed. "
              f"{install_hint(missing[0])}", file=sys.stderr)
        return 2
    folder = notebooks_dir()
    if folder is None:
        print(f"error: no notebooks folder at {NOTEBOOKS} (the lab opens the repository's notebooks/ beside the "
              "workbench package). Clone the repository and run `python3 bootstrap.py serve` there, or install "
              "it editable: pip install -e '.[app]'.", file=sys.stderr)
        return 2
    cmd = lab_command(folder, args.host, args.port, browser=not args.no_browser)
    print(f"Starting JupyterLab on http://{args.host}:{args.port} with {folder} …", flush=True)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:  # Ctrl-C reaches JupyterLab too, which shuts down by itself
        return 130
