"""The command line: `workbench serve | run | eval | attribute | prompt | finetune | lab | world | runs | show`.

``main`` parses and dispatches (main.py); fine-tuning, prompts and the notebooks' lab have modules of their
own.
"""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["main", "build_parser"]
