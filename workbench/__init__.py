"""ReAct Workbench: run, inspect, attribute, evaluate and fine-tune reasoning-and-acting agents.

One Python API serves the app, the CLI and the notebooks:

    >>> from workbench import Agent, load_model        # doctest: +SKIP
    >>> trace = Agent(load_model()).run("When was Varnholt founded?")   # doctest: +SKIP
    >>> trace.to_dataframe()                           # doctest: +SKIP

Importing the package loads no heavy optional dependency (gradio, plotly, captum, peft, pypdf); each is
imported inside the function that needs it.
"""

from .agent import Agent, AgentConfig, validate_task
from .corpus import Corpus, Document, Hit, MiniLMEncoder
from .datasets import Suite, list_builtin_suites, load_suite
from .documents import load_corpus_path, read_documents
from .errors import (
    CalculatorError,
    ConfigError,
    CorpusError,
    DatasetError,
    InputError,
    ModelLoadError,
    ModelNotFoundError,
    ParseError,
    PromptError,
    StoreError,
    TemplateError,
    ToolError,
    UnknownToolError,
    WorkbenchError,
    WorldError,
)
from .evaluation import EVAL_MODES, EvalConfig, EvalResult, evaluate
from .finetune import FineTuneConfig
from .generation import DecodeSession, Generation, GenerationConfig
from .naive import NaiveSession
from .models import DEFAULT_MODEL, LoadedModel, load_model, tiny_model
from .parsing import ParsedStep, parse_action, parse_answer, parse_step
from .prompts import Example, ExampleStep, PromptTemplate, list_presets, load_prompt
from .store.runs import RunSummary, Store
from .testing import ScriptedModel
from .tools.calculator import calculate
from .tools.core import Tool, Toolbox, ToolContext, default_tools, tool
from .types import GoldStep, Segment, Step, Task, ToolCall, Trace
from .world.generate import World, generate_world, load_tasks, load_world, write_world

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentConfig",
    "CalculatorError",
    "ConfigError",
    "DatasetError",
    "EVAL_MODES",
    "EvalConfig",
    "EvalResult",
    "FineTuneConfig",
    "Corpus",
    "CorpusError",
    "DEFAULT_MODEL",
    "DecodeSession",
    "Document",
    "Example",
    "ExampleStep",
    "Generation",
    "GenerationConfig",
    "GoldStep",
    "Hit",
    "InputError",
    "LoadedModel",
    "MiniLMEncoder",
    "ModelLoadError",
    "ModelNotFoundError",
    "NaiveSession",
    "ParseError",
    "ParsedStep",
    "PromptError",
    "PromptTemplate",
    "RunSummary",
    "ScriptedModel",
    "Segment",
    "Suite",
    "Step",
    "Store",
    "StoreError",
    "Task",
    "TemplateError",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolError",
    "Toolbox",
    "Trace",
    "UnknownToolError",
    "WorkbenchError",
    "World",
    "WorldError",
    "calculate",
    "default_tools",
    "evaluate",
    "generate_world",
    "list_builtin_suites",
    "list_presets",
    "load_corpus_path",
    "load_model",
    "load_prompt",
    "load_suite",
    "load_tasks",
    "load_world",
    "parse_action",
    "parse_answer",
    "parse_step",
    "read_documents",
    "tiny_model",
    "tool",
    "validate_task",
    "write_world",
]
