"""notebooks/06_interventions.ipynb runs top to bottom (on the tiny model here; on the real one in the marked set)."""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_interventions.ipynb"


def _execute(model: str, tmp_path, **env: str):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {"WORKBENCH_MODEL": model, **env}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _check(outputs) -> str:
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) >= 2  # entropy, shares
    return "".join(o.get("text", "") for o in outputs)


def test_the_interventions_notebook_runs_on_the_tiny_model(tmp_path):
    text = _check(_execute("tiny", tmp_path, WORKBENCH_CF_TASKS="1"))
    assert "fork record:" in text and "'part': 'observation'" in text and "the model wants to:" in text


@pytest.mark.real_model
def test_the_interventions_notebook_runs_on_the_shipped_adapter(tmp_path):
    text = _check(_execute("", tmp_path, WORKBENCH_CF_TASKS="2"))
    assert "fork answer:" in text
