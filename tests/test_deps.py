"""A missing optional package is a message naming it and the install command, in the API, the CLI and the app."""

import sys

import pytest

from workbench.agent import Agent
from workbench.deps import install_hint, require
from workbench.errors import MissingDependencyError, WorkbenchError
from workbench.testing import ScriptedModel


@pytest.fixture
def no_captum(monkeypatch):
    """Make `import captum` fail as it does where captum is not installed."""
    for name in [m for m in sys.modules if m == "captum" or m.startswith("captum.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)


def test_require_names_the_package_the_feature_and_the_install_command(no_captum):
    with pytest.raises(MissingDependencyError) as info:
        require("captum.attr", "Attribution")
    message = str(info.value)
    assert message.startswith("Attribution needs the package 'captum', which is not installed")
    assert "pip install 'captum>=0.8'" in message and "pip install 'react-workbench[app]'" in message
    assert isinstance(info.value, ImportError) and isinstance(info.value, WorkbenchError)


def test_a_missing_dependency_of_the_package_itself_keeps_its_own_error(monkeypatch, tmp_path):
    # The package is installed, but its own import of something else fails: that real error is not hidden.
    (tmp_path / "wb_broken_pkg").mkdir()
    (tmp_path / "wb_broken_pkg" / "__init__.py").write_text("import wb_missing_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        require("wb_broken_pkg", "A test")
    assert info.value.name == "wb_missing_dep_xyz" and not isinstance(info.value, MissingDependencyError)
    assert install_hint("pypdf").startswith("Install it with: pip install 'pypdf>=5.0'")


def test_the_api_says_how_to_install_captum(no_captum, tiny, corpus):
    from workbench.attribution import attribute_step

    trace = Agent(tiny, corpus=corpus, max_steps=1, max_new_tokens=4).run("When was Varnholt founded?")
    with pytest.raises(MissingDependencyError, match=r"Attribution needs the package 'captum'.*pip install"):
        attribute_step(trace, 1, target="step")


def test_the_cli_says_how_to_install_captum(no_captum, tmp_path, corpus, capsys):
    from workbench.cli import main
    from workbench.store import Store

    store = Store(tmp_path / "runs.db")
    trace = Agent(ScriptedModel([" x\nAction: finish[1312]"]), corpus=corpus).run("When was Varnholt founded?")
    store.save_trace(trace)
    code = main(["--store", str(tmp_path / "runs.db"), "attribute", trace.id, "--model", "tiny"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: Attribution needs the package 'captum'") and "pip install 'captum>=0.8'" in err


def test_the_app_says_how_to_install_captum(no_captum, tmp_path, tiny, corpus):
    import gradio as gr

    from workbench.app.attribution_tab import compute_attribution
    from workbench.app.context import AppContext, ModelRegistry
    from workbench.store import Store

    store = Store(tmp_path / "runs.db")
    ctx = AppContext(store=store, models=ModelRegistry("tiny"), corpus=corpus)
    trace = Agent(tiny, corpus=corpus, max_steps=1, max_new_tokens=4).run("When was Varnholt founded?")
    store.save_trace(trace)
    with pytest.raises(gr.Error, match=r"Attribution needs the package 'captum'.*react-workbench\[app\]"):
        compute_attribution(ctx, trace.id, "1", "step", "feature_ablation", "segment", None, 8, 16)


def test_pdf_reading_says_how_to_install_pypdf(monkeypatch, tmp_path):
    from workbench.documents import read_documents

    monkeypatch.setitem(sys.modules, "pypdf", None)
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    with pytest.raises(MissingDependencyError, match=r"needs the package 'pypdf'.*pip install 'pypdf>=5.0'"):
        read_documents(pdf)
