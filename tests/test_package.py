"""Import hygiene and the public surface of the package."""

import inspect
import subprocess
import sys

import workbench


def test_import_leaves_heavy_optional_dependencies_out():
    code = ("import sys, workbench; "
            "print(','.join(m for m in ('gradio', 'plotly', 'captum', 'peft', 'pypdf', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import workbench pulled in: {out}"


def test_all_matches_exported_members():
    exported = {name for name, value in vars(workbench).items()
                if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"}
    assert set(workbench.__all__) == exported
    assert len(workbench.__all__) == len(set(workbench.__all__))
    for name in workbench.__all__:  # each name is the package's own member under its own name, documented
        value = getattr(workbench, name)
        if callable(value):
            assert value.__module__.startswith("workbench.") and value.__name__ == name, (name, value)
            assert (value.__doc__ or "").strip(), f"workbench.{name} has no docstring"
        else:  # a constant: a non-empty model id or table of choices
            assert isinstance(value, (str, tuple)) and value, (name, value)


def test_app_module_does_not_import_gradio_at_import_time():
    code = "import sys, workbench.app; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
