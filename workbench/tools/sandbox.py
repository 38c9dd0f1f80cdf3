"""An optional ``python`` tool: the model's code runs in a separate, limited process, never in ours.

It is off by default: no toolbox holds it unless you add it yourself,

    >>> from workbench.tools import Toolbox, default_tools
    >>> tools = Toolbox([*default_tools(), python_tool(timeout=5, memory_mb=256)])   # doctest: +SKIP

and then each ``python[code]`` action starts a fresh interpreter (``python -I -S``: no user site,
no site packages, no current folder on the path) in an empty temporary folder, with an empty
environment, limits on address space (memory), CPU seconds, open files and the size of files it
may write, and a wall-clock timeout after which its whole process group is killed.
What it prints (stdout, then stderr) is the observation, cut to ``max_output`` characters.

This bounds what a runaway or hostile snippet can cost; it is not a security boundary against a
determined attacker (the child runs as the same user and can reach the network the machine can).
Nothing in the workbench process evaluates model output as code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

from ..errors import ConfigError, ToolError
from .core import Tool

__all__ = ["python_tool", "run_python", "PythonResult"]

_MAX_CODE = 20_000  # characters of code one action may carry


class PythonResult:
    """What a sandboxed snippet did: its output, exit code and whether a limit stopped it."""

    def __init__(self, stdout: str, stderr: str, returncode: int | None, timed_out: bool) -> None:
        self.stdout, self.stderr, self.returncode, self.timed_out = stdout, stderr, returncode, timed_out

    def __repr__(self) -> str:
        return f"PythonResult(returncode={self.returncode}, timed_out={self.timed_out}, stdout={self.stdout[:60]!r})"


def _limit(pid: int, memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    """Set the child's resource limits from here (prlimit): no code runs in the child between fork
    and exec, which would not be safe in the app's many threads."""
    import resource

    for name, value in (("RLIMIT_AS", memory_mb * 1024 * 1024), ("RLIMIT_CPU", cpu_seconds),
                        ("RLIMIT_FSIZE", file_mb * 1024 * 1024), ("RLIMIT_NOFILE", 64), ("RLIMIT_CORE", 0)):
        resource.prlimit(pid, getattr(resource, name), (value, value))


def run_python(code: str, timeout: float = 5.0, memory_mb: int = 256, cpu_seconds: int | None = None,
               file_mb: int = 1) -> PythonResult:
    """Run ``code`` in a fresh, limited interpreter and return what it printed (POSIX only)."""
    if not sys.platform.startswith("linux"):
        raise ToolError("The python tool needs Linux (per-process resource limits); it is not available here.")
    if not isinstance(code, str) or not code.strip():
        raise ToolError("python needs code, e.g. python[print(2 ** 10)].")
    if len(code) > _MAX_CODE:
        raise ToolError(f"The code has {len(code):,} characters; the limit is {_MAX_CODE:,}. Send a shorter snippet.")
    cpu = cpu_seconds if cpu_seconds is not None else max(1, int(timeout))
    with tempfile.TemporaryDirectory(prefix="workbench-python-") as folder:
        # The interpreter reads the whole program from stdin before running any of it, so the
        # limits are in place before the first line of the snippet executes.
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-"], cwd=folder, env={}, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _limit(proc.pid, memory_mb, cpu, file_mb)
        except OSError as err:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ToolError(f"Could not limit the python process ({err}); the code was not run.") from err
        try:
            out, err = proc.communicate(code.encode("utf-8", "replace"), timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own group: nothing it started survives
            out, err = proc.communicate()
            timed_out = True
    decode = lambda b: b.decode("utf-8", "replace")  # noqa: E731
    return PythonResult(decode(out), decode(err), proc.returncode, timed_out)


def python_tool(timeout: float = 5.0, memory_mb: int = 256, max_output: int = 2000) -> Tool:
    """A ``python[code]`` Tool that runs each snippet with :func:`run_python` under these limits."""
    if not 0.1 <= timeout <= 120:
        raise ConfigError(f"timeout must be between 0.1 and 120 seconds, got {timeout}.")
    if not 32 <= memory_mb <= 16_384:
        raise ConfigError(f"memory_mb must be between 32 and 16384, got {memory_mb}.")

    def python(code: str) -> str:
        """Run a short Python program in a separate, limited process and return what it prints."""
        result = run_python(code, timeout=timeout, memory_mb=memory_mb)
        if result.timed_out:
            raise ToolError(f"The code ran longer than {timeout:g} s and was stopped; make it shorter or faster.")
        text = (result.stdout + result.stderr).strip()
        if result.returncode and result.returncode < 0:
            name = _signal_name(-result.returncode)
            raise ToolError(f"The code was stopped by {name} (a CPU, memory or file limit); use less of it.")
        if result.returncode:
            last = text.splitlines()[-1] if text else f"exit code {result.returncode}"
            if "MemoryError" in text:
                last = f"MemoryError: the code needed more than {memory_mb} MB"
            raise ToolError(f"The code failed: {last[:500]}")
        if not text:
            return "(no output: print the result, e.g. print(x))"
        return text if len(text) <= max_output else text[: max_output - 1] + "…"

    return Tool(name="python", description=python.__doc__ or "", function=python, parameters=["code"],
                argument_hint="code")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"

