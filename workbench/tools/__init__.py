"""Tools the agent acts with: Tool + @tool and the built-ins (core), the arithmetic evaluator (calculator) and the
optional Python sandbox (sandbox).
"""

from __future__ import annotations

from .calculator import MAX_DEPTH, MAX_DIGITS, MAX_EXPONENT, MAX_LENGTH, calculate, format_number  # noqa: F401
from .core import FINISH, Tool, Toolbox, ToolContext, default_tools, tool  # noqa: F401

__all__ = ['Tool', 'tool', 'Toolbox', 'ToolContext', 'default_tools', 'FINISH', 'calculate', 'format_number', 'MAX_LENGTH', 'MAX_DEPTH', 'MAX_EXPONENT', 'MAX_DIGITS']
