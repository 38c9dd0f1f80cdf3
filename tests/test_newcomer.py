"""The newcomer's path, proven end to end: a fresh copy of the project, set up with the README's one
command (``python3 bootstrap.py serve``, run by the base interpreter so that it builds the copy's
own .venv with the ``app`` extra), serves every tab's main action through gradio_client, runs each
notebook's imports in a kernel of that environment, starts JupyterLab, and imports every module of
the package; and nothing the package or a notebook imports is missing from that install.

The environment is built once per session: a few minutes from pip's cache and the machine's local
wheels (bounded by BUILD_TIMEOUT_S). The build and module times are printed at the end of the module.
The `workbench lab` tests at the bottom are fast and not marked ``newcomer``.
"""

from __future__ import annotations

import ast
import base64
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from workbench.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAMES = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
BUILD_TIMEOUT_S = 20 * 60  # install (torch, the model package, the app extra) and start; minutes from the caches
CALL_TIMEOUT_S = 300  # one gradio_client call on the tiny model
JOB_TIMEOUT_S = 300  # a two-step fine-tune job on the tiny model, in its own process
KERNEL_TIMEOUT_S = 300  # a kernel's start and its notebook's imports (torch, transformers, plotly)
SERVE_MARKER = b"-m workbench.cli serve"  # bootstrap's last line before it starts the app
TIMINGS: dict[str, float] = {}

# Names imported by the package or a notebook that the serve install may lack, each with why it is optional.
# Empty today: every import is provided. Add an entry only for an import guarded by try/except ImportError.
OPTIONAL_IMPORTS: dict[str, str] = {}

newcomer_mark = pytest.mark.newcomer


# ------------------------------------------------------------------ the newcomer's environment


@dataclass
class Newcomer:
    """A fresh copy of the project set up by ``python3 bootstrap.py serve``, its app serving."""

    clone: Path  # the copy, as a clone of the repository has it
    python: Path  # the copy's own .venv interpreter, which bootstrap created
    url: str  # the app, on 127.0.0.1
    store: Path  # the run store the app was given
    env: dict[str, str]  # the shell of someone who just cloned: no virtual environment active
    log: Path  # everything bootstrap and the app printed
    timings: dict[str, float] = field(default_factory=dict)

    def tail(self, lines: int = 40, chars: int = 6000) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])[-chars:]


def _copy_as_cloned(dest: Path) -> int:
    """Copy what a clone has: tracked files plus untracked files git does not ignore (so uncommitted work
    is tested during development; in CI the two are the same). Never .venv, which git ignores."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode()
    copied = 0
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if rel.split("/")[0] == ".venv" or not src.is_file():  # deleted in the working tree, not yet committed
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        copied += 1
    return copied


def _newcomer_env(home: Path) -> dict[str, str]:
    """os.environ without the test's virtual environment (VIRTUAL_ENV, its bin on PATH) or the test's settings."""
    venv_bins = {os.path.realpath(Path(sys.executable).parent), os.path.realpath(Path(sys.prefix) / "bin")}
    if os.environ.get("VIRTUAL_ENV"):
        venv_bins.add(os.path.realpath(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    dropped = {"VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "__PYVENV_LAUNCHER__",
               "WORKBENCH_NO_VENV", "WORKBENCH_HOME", "WORKBENCH_STORE", "WORKBENCH_MODEL"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PYTEST_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and os.path.realpath(p) not in venv_bins)
    env.update(WORKBENCH_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
               GRADIO_ANALYTICS_ENABLED="False", TOKENIZERS_PARALLELISM="false")
    return env


def _base_python(env: dict[str, str], cwd: Path) -> str:
    """The `python3` a newcomer's shell finds, checked to be no virtual environment (else bootstrap would
    install into it instead of creating the copy's .venv); the test venv's base interpreter otherwise."""
    probe = "import sys; print(sys.prefix != sys.base_prefix, sys.version_info >= (3, 11))"
    tried = []
    for exe in (shutil.which("python3", path=env["PATH"]), getattr(sys, "_base_executable", None)):
        if not exe:
            continue
        out = subprocess.run([exe, "-c", probe], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
        if out.returncode == 0 and out.stdout.split() == ["False", "True"]:
            return exe
        tried.append(f"{exe}: {out.stdout.strip() or out.stderr.strip()[-200:]}")
    pytest.fail("No base Python 3.11+ outside a virtual environment to run bootstrap.py with; tried "
                + "; ".join(tried))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """End bootstrap and the app it started: the process group this test created, TERM then KILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
    try:  # the app (a child in the same group) may outlive bootstrap by a moment
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="session")
def newcomer(tmp_path_factory):
    if not (ROOT / ".git").exists():
        pytest.skip("the newcomer's path starts from a git clone; this tree is not one")
    base = tmp_path_factory.mktemp("newcomer")
    clone, home = base / "react-workbench", base / "home"
    home.mkdir()
    t0 = TIMINGS["started"] = time.monotonic()
    copied = _copy_as_cloned(clone)
    assert (clone / "bootstrap.py").is_file() and not (clone / ".venv").exists(), copied
    env = _newcomer_env(home)
    python3 = _base_python(env, clone)
    port, store, log = free_port(), home / "newcomer-runs.db", base / "bootstrap.log"
    # Exactly the README's command, with `workbench serve` options after it.
    cmd = [python3, "bootstrap.py", "serve", "--model", "tiny", "--port", str(port), "--store", str(store),
           "--no-preload"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    nc = Newcomer(clone=clone, python=clone / ".venv" / "bin" / "python", url=f"http://127.0.0.1:{port}/",
                  store=store, env=env, log=log)
    try:
        installed_at = None
        while True:
            waited = time.monotonic() - t0
            if installed_at is None and SERVE_MARKER in log.read_bytes():
                installed_at = waited
            if _answers(nc.url):
                break
            if proc.poll() is not None:
                pytest.fail(f"`{' '.join(cmd[1:])}` exited with {proc.returncode} before the app answered on "
                            f"{nc.url} ({waited:.0f} s). Its output ends:\n{nc.tail()}")
            if waited > BUILD_TIMEOUT_S:
                pytest.fail(f"`{' '.join(cmd[1:])}` did not serve {nc.url} within {BUILD_TIMEOUT_S} s. "
                            f"Its output ends:\n{nc.tail()}")
            time.sleep(2)
        nc.timings = {"install_s": installed_at or math.nan, "ready_s": time.monotonic() - t0}
        TIMINGS.update(nc.timings)
        text = log.read_text(errors="replace")
        assert f"{nc.python} -m workbench.cli serve" in text, (  # the copy's own .venv, never the test's
            f"bootstrap did not serve from {nc.python}:\n{nc.tail()}")
        yield nc
    finally:
        _stop(proc)


@pytest.fixture(scope="module", autouse=True)
def _report_timings(request):
    t0 = time.monotonic()
    yield
    TIMINGS["module_s"] = time.monotonic() - min(t0, TIMINGS.get("started", t0))  # the build is set up first
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and "ready_s" in TIMINGS:
        with capture.global_and_fixture_disabled():  # shown without -s too
            reporter.write_line(f"\n[newcomer] bootstrap install {TIMINGS['install_s']:.0f} s, app answering after "
                                f"{TIMINGS['ready_s']:.0f} s, whole module {TIMINGS['module_s']:.0f} s")


# ------------------------------------------------------------------ every tab's main action, through gradio_client


@pytest.fixture(scope="module")
def client(newcomer):
    from gradio_client import Client

    return Client(newcomer.url, verbose=False)


def call(client: Any, api: str, *args: Any, timeout: float = CALL_TIMEOUT_S, **kwargs: Any) -> Any:
    """One endpoint call with a bounded wait. Keyword arguments where the endpoint's parameters have names
    (an input added later with a default then changes nothing here), positions where they are param_N."""
    return client.submit(*args, api_name=api, **kwargs).result(timeout=timeout)


def _plot_values(values: Any) -> list[Any]:
    """A plotly JSON array: a list, or plotly 6's typed array {dtype, bdata}."""
    if isinstance(values, dict) and "bdata" in values:
        import numpy as np

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


@pytest.fixture(scope="module")
def first_run(client):
    """An example question of the demo world, run in react mode on the tiny model from the Run tab."""
    from workbench.world import example_questions

    question = example_questions(8)[0]
    out = call(client, "/run", instruction=question, mode="react", model="tiny", max_steps=2, temperature=0.0)
    return question, out


@newcomer_mark
def test_run_tab_runs_an_example_question_and_history_lists_it(newcomer, client, first_run):
    from workbench.store import Store

    question, (timeline, status, table, _plot, _pick, run_id) = first_run
    assert run_id and f"run `{run_id}`" in status and question in timeline
    assert len(table["data"]) >= 1
    trace = Store(newcomer.store).get_trace(run_id)  # stored where `--store` said
    assert trace.task == question and trace.mode == "react" and trace.steps
    history = call(client, "/history", "")
    assert run_id in [row[0] for row in history["data"]]


@newcomer_mark
@pytest.mark.parametrize("method", ["feature_ablation", "layer_integrated_gradients", "surrogate"])
def test_attribution_tab_scores_a_step_of_the_run(client, first_run, method):
    run_id = first_run[1][5]
    steps, summary = call(client, "/attribution_steps", run_id)
    step = steps["value"]
    assert step and run_id in summary
    # run id, step, target, method, granularity, segments, Shapley permutations, surrogate ablations,
    # KernelShap / Lime samples, IG steps (the surrogate's LASSO is scikit-learn: installed by the serve command)
    result, _heatmap, bars, html_file = call(client, "/attribute", run_id, step, "action", method, "segment", [],
                                             4, 8, 8, 4)[:4]
    assert f"· {method}**" in result
    bar = json.loads(bars["plot"])["data"][0]
    features, scores = _plot_values(bar["x"]), _plot_values(bar["y"])
    assert len(features) == len(scores) > 0 and len(set(features)) == len(features), (features, scores)
    assert {"instruction", "task"} <= set(features) and all(math.isfinite(s) for s in scores)
    assert Path(html_file).read_text(encoding="utf-8").count("<tr><td>") == len(features)  # one row per feature


@newcomer_mark
def test_evaluate_tab_evaluates_two_tasks(client):
    status, by_mode, _chart, tasks, eval_id = call(client, "/evaluate", suite="demo:dev", upload=None,
                                                   modes=["react", "direct"], model="tiny", limit=2, k=1)
    assert status.startswith("Done: evaluation") and eval_id and eval_id in status
    assert [row[0] for row in by_mode["data"]] == ["react", "direct"]
    assert len(tasks["data"]) == 4 and len({row[0] for row in tasks["data"]}) == 2  # 2 tasks x 2 modes


@newcomer_mark
def test_prompt_lab_validates_and_saves_a_version(client):
    parent, _problems, _status, *view = call(client, "/prompt_load", "preset:react")
    name, mode, style, instruction, system, user, tools, _pick, shown, question, answer, steps = view
    fields = [name, mode, style, instruction, system, user, tools, shown, question, answer, steps]
    problems, status = call(client, "/prompt_validate", *fields, "tiny")
    assert problems["data"] == [] and status.startswith("No problems"), (problems, status)
    version, _problems, status, saved_name, *_pickers = call(client, "/prompt_save", *fields, "newcomer-react",
                                                               "saved by the newcomer test", parent, "tiny")
    assert saved_name == "newcomer-react" and f"version `{version}`" in status, status
    listed = call(client, "/prompt_versions")[0]["choices"]
    assert f"saved:{version}" in [value for _label, value in listed]


@newcomer_mark
def test_finetune_tab_previews_and_trains_two_steps(client):
    from workbench.app.finetune_tab import FORM_FIELDS

    html = call(client, "/finetune_preview", "tiny", "demo:train:arithmetic")
    assert "thought</b> (reasoning loss)" in html and "action</b> (action loss)" in html
    form = dict(task="agent", base_model="tiny:3", data="demo:train:arithmetic", eval_data="", method="lora", steps=2,
                learning_rate=1e-3, batch_tokens=4096, grad_accum=1, max_length=4096, weight_decay=0.01, lora_r=4,
                reasoning_weight=1.0, action_weight=1.0, eval_interval=0, probe_interval=0, probe_size=1, seed=0,
                continual_data="", replay_fraction=0.0)
    job_id, status, *_ = call(client, "/finetune_launch", *[form[name] for name, *_ in FORM_FIELDS], 1)
    assert job_id.startswith("ft-"), status
    deadline, log = time.monotonic() + JOB_TIMEOUT_S, ""
    try:
        while time.monotonic() < deadline:
            status, _curves, log = call(client, "/finetune_status", job_id)
            if any(f"**{end}**" in status for end in ("done", "failed", "cancelled")):
                break
            time.sleep(2)
    finally:
        if not any(f"**{end}**" in status for end in ("done", "failed", "cancelled")):
            call(client, "/finetune_cancel", job_id)  # never leave a worker behind
    assert "**done**" in status and "step 2 / 2" in status, f"{status}\n{log}"


@newcomer_mark
def test_history_reopens_the_run(client, first_run):
    question, first = first_run
    timeline, status, _table, _plot, _pick, run_id = call(client, "/open_run", run_id=first[5])
    assert run_id == first[5] and question in timeline and f"run `{run_id}`" in status


# ------------------------------------------------------------------ the notebooks and JupyterLab, in that environment


def _code_cells(notebook: Path) -> list[str]:
    """Each code cell's source, IPython magics and shell lines left out (they are not Python)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["\n".join(line for line in "".join(c["source"]).splitlines() if not line.lstrip().startswith(("%", "!")))
            for c in cells if c["cell_type"] == "code"]


def _import_statements(source: str) -> list[ast.Import | ast.ImportFrom]:
    return [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _start_kernel(nc: Newcomer, spec_root: Path) -> tuple[Any, Any]:
    """A kernel whose interpreter is the fresh environment's python (a kernelspec pointing at it),
    started from this test's jupyter_client, in the copy's notebooks folder with the newcomer's env."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = spec_root / "kernels" / "newcomer"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(nc.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (the newcomer's .venv)", "language": "python"}))
    km = KernelManager(kernel_name="newcomer",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_root / "kernels")]))
    km.start_kernel(cwd=str(nc.clone / "notebooks"), env=dict(nc.env))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=KERNEL_TIMEOUT_S)
    except Exception:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc


@newcomer_mark
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_kernel_starts_in_the_fresh_env_and_its_imports_work(newcomer, name, tmp_path):
    imports = [ast.unparse(n) for cell in _code_cells(newcomer.clone / "notebooks" / name)
               for n in _import_statements(cell)]
    assert imports, f"{name} imports nothing?"
    probe = textwrap.dedent("""
        import json, sys, workbench, ipywidgets  # ipywidgets: tqdm.auto's progress bars in the notebooks
        print("NEWCOMER-PROBE", json.dumps([sys.executable, workbench.__file__]))
    """)
    km, kc = _start_kernel(newcomer, tmp_path)
    printed: list[str] = []

    def hook(msg: dict) -> None:
        content = msg["content"]
        if msg["header"]["msg_type"] == "stream":
            printed.append(content["text"])
        elif msg["header"]["msg_type"] == "error":
            printed.append("\n".join(content["traceback"]))

    try:
        reply = kc.execute_interactive("\n".join(imports) + "\n" + probe, timeout=KERNEL_TIMEOUT_S, output_hook=hook)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    out = re.sub(r"\x1b\[[0-9;]*m", "", "".join(printed))  # tracebacks come coloured
    assert reply["content"]["status"] == "ok", f"{name}'s imports failed in the fresh env:\n" + "\n".join(imports) + \
        f"\n{out}"
    executable, package = json.loads(out.split("NEWCOMER-PROBE", 1)[1].strip().splitlines()[0])
    assert Path(executable).parent == newcomer.python.parent, executable  # the kernel ran the fresh env's python
    assert Path(package).is_relative_to(newcomer.clone), package  # and imported the copy's workbench


@newcomer_mark
def test_jupyter_lab_runs_from_the_fresh_env(newcomer):
    jupyter = newcomer.python.parent / "jupyter"
    out = subprocess.run([str(jupyter), "lab", "--version"], env=newcomer.env, cwd=newcomer.clone,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and re.fullmatch(r"4\.\d+\.\d+\S*", out.stdout.strip()), out.stdout + out.stderr


# ------------------------------------------------------------------ nothing imported is missing from the serve install

PROBE = """
import importlib, importlib.metadata, json, pkgutil, sys

found = {"failed": {}, "modules": []}
import workbench

found["package"] = workbench.__file__
for info in pkgutil.walk_packages(workbench.__path__, "workbench.",
                                  onerror=lambda name: found["failed"].setdefault(name, repr(sys.exc_info()[1]))):
    found["modules"].append(info.name)
    if info.name.endswith(".__main__"):  # `python -m` entry points run their program when imported
        continue
    try:
        importlib.import_module(info.name)
    except BaseException as err:
        found["failed"][info.name] = f"{type(err).__name__}: {err}"
found["distributions"] = importlib.metadata.packages_distributions()
found["stdlib"] = sorted(sys.stdlib_module_names)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(found, f)
"""


@pytest.fixture(scope="module")
def fresh_imports(newcomer, tmp_path_factory) -> dict[str, Any]:
    """Every module of the package imported in the fresh env (outside the copy, so through the install)."""
    folder = tmp_path_factory.mktemp("probe")
    (folder / "probe.py").write_text(PROBE, encoding="utf-8")
    out = subprocess.run([str(newcomer.python), "probe.py", "found.json"], cwd=folder, env=newcomer.env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads((folder / "found.json").read_text(encoding="utf-8"))


def _package_modules(root: Path) -> set[str]:
    return {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            for p in (root / "workbench").rglob("*.py") if p.name != "__main__.py"}


@newcomer_mark
def test_every_module_of_the_package_imports_in_the_fresh_env(newcomer, fresh_imports):
    assert Path(fresh_imports["package"]).is_relative_to(newcomer.clone), fresh_imports["package"]
    assert not fresh_imports["failed"], "modules that do not import in the serve install:\n" + "\n".join(
        f"  {module}: {error}" for module, error in fresh_imports["failed"].items())
    missed = _package_modules(newcomer.clone) - set(fresh_imports["modules"]) - {"workbench"}
    assert not missed, f"pkgutil.walk_packages did not reach {sorted(missed)}"
    assert {"workbench.app.run_tab", "workbench.app.attribution_tab", "workbench.cli"} <= set(fresh_imports["modules"])


def imported_names(source: str) -> set[str]:
    """Top-level names of everything ``source`` imports: import statements at any depth (module level and
    inside functions), and the literal names given to require(), import_module() and find_spec()."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("require", "import_module", "find_spec")):
            names.add(node.args[0].value.split(".")[0])
    return names


@newcomer_mark
def test_nothing_the_package_or_a_notebook_imports_is_missing_from_the_serve_install(newcomer, fresh_imports):
    sources = {str(p.relative_to(newcomer.clone)): p.read_text(encoding="utf-8")
               for p in sorted((newcomer.clone / "workbench").rglob("*.py"))}
    for notebook in sorted((newcomer.clone / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(_code_cells(notebook), 1):
            sources[f"{notebook.relative_to(newcomer.clone)} (code cell {i})"] = cell
    stdlib, provided = set(fresh_imports["stdlib"]), fresh_imports["distributions"]
    missing = [f"  {where} imports {name!r}, which no distribution of the serve install provides"
               for where, text in sources.items() for name in sorted(imported_names(text))
               if name not in stdlib and name != "workbench" and name not in provided and name not in OPTIONAL_IMPORTS]
    assert not missing, "add the package to pyproject's `app` extra (what `bootstrap.py serve` installs):\n" + \
        "\n".join(missing)
    assert {"gradio", "captum", "peft", "torch", "IPython"} <= set(provided)  # the probe saw the real install


def test_imported_names_sees_every_kind_of_import():
    source = textwrap.dedent("""
        import os.path, numpy as np
        from pandas import DataFrame
        from . import sibling
        def f():
            import captum.attr
            require("pypdf", "PDF"); importlib.import_module("sklearn.linear_model"); find_spec(NAME)
    """)
    assert imported_names(source) == {"os", "numpy", "pandas", "captum", "pypdf", "sklearn"}


# ------------------------------------------------------------------ `workbench lab` (fast; not marked newcomer)


def _lab_args(*argv: str) -> Any:
    import argparse

    from workbench.cli.lab import add_lab_parser

    parser = argparse.ArgumentParser(prog="workbench")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["lab", *argv])


def test_lab_runs_jupyterlab_on_the_notebooks_with_this_interpreter(monkeypatch, capsys):
    from workbench.cli import lab as cli_lab

    ran = []
    monkeypatch.setattr(cli_lab.subprocess, "call", lambda cmd: ran.append(cmd) or 0)
    monkeypatch.setattr(cli_lab, "missing_packages", lambda: [])  # jupyterlab and ipykernel installed, as by [app]
    assert cli_lab.cmd_lab(_lab_args()) == 0
    assert ran == [[sys.executable, "-m", "jupyterlab", f"--notebook-dir={ROOT / 'notebooks'}",
                    "--ServerApp.ip=127.0.0.1", "--port=8888"]]
    assert cli_lab.cmd_lab(_lab_args("--port", "8890", "--host", "0.0.0.0", "--no-browser")) == 0
    assert ran[1][4:] == ["--ServerApp.ip=0.0.0.0", "--port=8890", "--no-browser"]
    assert "http://127.0.0.1:8888" in capsys.readouterr().out


def test_lab_without_jupyterlab_names_the_package_and_the_install_command(monkeypatch, capsys):
    from workbench.cli import lab as cli_lab

    monkeypatch.setattr(cli_lab.subprocess, "call", lambda cmd: pytest.fail(f"ran {cmd}"))
    monkeypatch.setitem(sys.modules, "jupyterlab", None)  # find_spec() says: not installed
    assert cli_lab.cmd_lab(_lab_args()) == 2
    err = capsys.readouterr().err
    assert "jupyterlab package, which is not installed" in err
    assert "pip install 'react-workbench[app]'" in err and "python3 bootstrap.py serve" in err


def test_lab_without_the_notebooks_folder_says_where_it_looked(monkeypatch, capsys, tmp_path):
    from workbench.cli import lab as cli_lab

    monkeypatch.setattr(cli_lab.subprocess, "call", lambda cmd: pytest.fail(f"ran {cmd}"))
    monkeypatch.setattr(cli_lab, "missing_packages", lambda: [])
    monkeypatch.setattr(cli_lab, "NOTEBOOKS", tmp_path / "site-packages" / "notebooks")
    assert cli_lab.cmd_lab(_lab_args()) == 2
    assert f"no notebooks folder at {tmp_path / 'site-packages' / 'notebooks'}" in capsys.readouterr().err
