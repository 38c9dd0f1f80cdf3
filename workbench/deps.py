"""Optional packages: import them where a feature needs them, with an error that says how to install.

The workbench's core needs torch and transformers; each heavier or narrower package (gradio for the
app, captum for attribution, peft for adapters and fine-tuning, pypdf for PDF uploads, jupyterlab
for the notebooks) is imported inside the function that uses it. A user who installed the bare
package gets, instead of a bare ``ModuleNotFoundError``, a :class:`MissingDependencyError` that
names the package, the feature and the exact command that installs it:

    >>> captum = require("captum", "Attribution")       # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["OPTIONAL", "require", "install_hint"]

# import name -> (distribution with its version range, as pyproject's `app` extra lists it)
OPTIONAL: dict[str, str] = {
    "gradio": "gradio>=6.31.0,<7",
    "gradio_client": "gradio_client>=1.0",
    "captum": "captum>=0.8",
    "peft": "peft>=0.13",
    "pypdf": "pypdf>=5.0",
    "jupyterlab": "jupyterlab>=4.0",
    "ipykernel": "ipykernel>=6.0",
    "sklearn": "scikit-learn>=1.3",
}


def install_hint(name: str) -> str:
    """The commands that install the optional package imported as ``name``."""
    dist = OPTIONAL.get(name.split(".")[0], name)
    return (f"Install it with: pip install '{dist}' (or everything the app and notebooks use: "
            "pip install 'react-workbench[app]'; from a clone, `python3 bootstrap.py serve` does this).")


def require(name: str, feature: str) -> ModuleType:
    """Import ``name`` (e.g. "captum.attr"), or raise MissingDependencyError naming ``feature`` and the fix."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        top = name.split(".")[0]
        if err.name is not None and err.name.split(".")[0] != top:
            raise  # the package is there but one of *its* dependencies is not: keep the real error
        raise MissingDependencyError(
            f"{feature} needs the package '{top}', which is not installed in this Python environment. "
            f"{install_hint(top)}") from err
