"""The companion notebooks run top to bottom (on the tiny model here; on the real one in the marked set)."""

import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, model: str | None, tmp_path, **extra_env: str) -> "object":
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = {"WORKBENCH_MODEL": model or "", **extra_env}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def test_quickstart_runs_on_the_tiny_model(tmp_path):
    nb = execute("01_quickstart.ipynb", "tiny", tmp_path)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "tiny-random-0" in text and "answer:" in text
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)


@pytest.mark.real_model
def test_quickstart_runs_on_the_embedded_model(tmp_path):
    nb = execute("01_quickstart.ipynb", None, tmp_path)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "SmolLM2-135M-Instruct" in text


def test_evaluation_notebook_runs_on_the_tiny_model(tmp_path):
    nb = execute("02_evaluation.ipynb", "tiny", tmp_path, WORKBENCH_EVAL_LIMIT="5")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)
    assert "20 results" in "".join(o.get("text", "") for o in outputs)


@pytest.mark.real_model
def test_evaluation_notebook_runs_on_the_embedded_model(tmp_path):
    nb = execute("02_evaluation.ipynb", None, tmp_path, WORKBENCH_EVAL_LIMIT="2")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_attribution_notebook_runs_on_the_tiny_model(tmp_path):
    nb = execute("03_attribution.ipynb", "tiny", tmp_path, WORKBENCH_ATTR_TASKS="1")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) >= 6  # + two levels, dependency map
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "wb-map-f" in html and "surrogate" in html and "tokens recomputed" in html  # text map, methods table
    assert (tmp_path / "attribution_example.html").is_file()


@pytest.mark.real_model
def test_attribution_notebook_runs_on_the_embedded_model(tmp_path):
    nb = execute("03_attribution.ipynb", None, tmp_path, WORKBENCH_ATTR_TASKS="2")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_prompt_lab_notebook_runs_on_the_tiny_model(tmp_path):
    nb = execute("04_prompt_lab.ipynb", "tiny", tmp_path, WORKBENCH_HOME=str(tmp_path))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "examples[1].steps[4].action" in html and "examples[2].steps[1].action" in html
    assert "thought_diff" in html and "same_action" in html
    assert "example 3" in html  # the attribution diff table
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs)
    assert "saved react-two-shot as" in text and "first divergence:" in text
    from workbench.store import Store

    assert [r["name"] for r in Store(tmp_path / "runs.db").prompt_versions()] == ["react-two-shot"]


@pytest.mark.real_model
def test_prompt_lab_notebook_runs_on_the_embedded_model(tmp_path):
    nb = execute("04_prompt_lab.ipynb", None, tmp_path, WORKBENCH_HOME=str(tmp_path))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)


def test_finetune_notebook_trains_and_redraws_live_on_the_tiny_model(tmp_path):
    nb = execute("05_finetune.ipynb", "tiny:3", tmp_path, WORKBENCH_FT_STEPS="3", WORKBENCH_HOME=str(tmp_path))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "3 steps in" in text and "answer:" in text and "react-tuned" in text
    # the curves output was created once and updated in place: its final state has every step's points
    plots = [str(o["data"]["application/vnd.plotly.v1+json"]) for o in outputs
             if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert any("step 3 / 3" in p and "train_loss" not in p and "train: reasoning" in p for p in plots), len(plots)


def _interventions(model: str, tmp_path, **env: str) -> str:
    """notebooks/06_interventions.ipynb run top to bottom; the text it printed."""
    nb = execute("06_interventions.ipynb", model, tmp_path, **env)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) >= 2  # entropy, shares
    return "".join(o.get("text", "") for o in outputs)


def test_the_interventions_notebook_runs_on_the_tiny_model(tmp_path):
    text = _interventions("tiny", tmp_path, WORKBENCH_CF_TASKS="1")
    assert "fork record:" in text and "'part': 'observation'" in text and "the model wants to:" in text


@pytest.mark.real_model
def test_the_interventions_notebook_runs_on_the_shipped_adapter(tmp_path):
    text = _interventions("", tmp_path, WORKBENCH_CF_TASKS="2")
    assert "fork answer:" in text
