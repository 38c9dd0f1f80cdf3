"""Errors raised by the workbench: one tree, each message naming the fix.

A failure the *model* causes (an unparsable completion, an unknown tool, a tool that raised) is
never an exception: it is recorded on the Step and the run goes on. These exceptions are for
failures of the *caller* or the environment: bad input, a missing model, a corrupt store.

    WorkbenchError
    ├── InputError            bad user input (empty instruction, out-of-range setting, bad file)
    │   ├── ConfigError       a configuration value out of range or of the wrong type
    │   └── DatasetError      a task file that is malformed (names the line and the field)
    ├── ModelLoadError        a model could not be loaded
    │   └── ModelNotFoundError   an id or folder that is not available offline
    ├── PromptError           a prompt template that cannot be rendered
    │   └── TemplateError     a missing or misspelled placeholder
    ├── ParseError            text that is not a Thought / Action step (strict parsing only)
    ├── ToolError             a tool could not do what was asked (becomes an observation)
    │   ├── UnknownToolError  an action naming no tool
    │   └── CalculatorError   an expression the calculator refuses
    ├── CorpusError           a corpus file that cannot be read
    ├── StoreError            the run store cannot be opened, read or written
    ├── WorldError            the demo world cannot be generated or read
    └── MissingDependencyError   an optional package is not installed (names it and the install command)
"""

from __future__ import annotations

__all__ = [
    "WorkbenchError",
    "InputError",
    "ConfigError",
    "DatasetError",
    "ModelLoadError",
    "ModelNotFoundError",
    "PromptError",
    "TemplateError",
    "ParseError",
    "ToolError",
    "UnknownToolError",
    "CalculatorError",
    "CorpusError",
    "StoreError",
    "WorldError",
    "MissingDependencyError",
    "Cancelled",
]


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose."""


class InputError(WorkbenchError, ValueError):
    """Input from the user that the workbench cannot act on."""


class ConfigError(InputError):
    """A configuration value that is out of range or of the wrong type."""


class DatasetError(InputError):
    """A task or benchmark file that cannot be read: the message names the line and the field."""


class ModelLoadError(WorkbenchError):
    """A model or tokenizer that could not be loaded."""


class ModelNotFoundError(ModelLoadError):
    """A model id or folder that is not available on this machine."""


class PromptError(WorkbenchError):
    """A prompt that cannot be built."""


class TemplateError(PromptError, KeyError):
    """A template with a missing, unknown or misspelled placeholder."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ParseError(WorkbenchError, ValueError):
    """Text that is not a Thought / Action step (raised only by the strict parser)."""


class ToolError(WorkbenchError):
    """A tool that could not do what was asked; the agent turns it into an observation."""


class UnknownToolError(ToolError):
    """An action that names no registered tool."""


class CalculatorError(ToolError, ValueError):
    """An arithmetic expression that the calculator refuses or cannot evaluate."""


class CorpusError(WorkbenchError):
    """A corpus file or document that cannot be read."""


class StoreError(WorkbenchError):
    """The run store cannot be opened, read or written."""


class WorldError(WorkbenchError):
    """The demo world cannot be generated or read."""


class MissingDependencyError(WorkbenchError, ImportError):
    """An optional package a feature needs is not installed; the message names it and the install command."""


class Cancelled(WorkbenchError):
    """Long work (an attribution, a dependency map) was stopped by the user; nothing partial is kept."""
