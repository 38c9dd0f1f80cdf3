"""Tools the agent can call, and the ``@tool`` decorator for adding your own.

A tool is a Python function with a docstring. Its name, description and arguments come from the
function itself, so the prompt's tool list is always in step with the code:

    >>> @tool
    ... def shout(text: str) -> str:
    ...     '''Repeat the text in capitals.'''
    ...     return text.upper()
    >>> shout.name, shout.description, shout("hi")
    ('shout', 'Repeat the text in capitals.', 'HI')

Built-in tools: ``search[entity]``, ``lookup[keyword]``, ``calculate[expression]`` and
``finish[answer]``. search and lookup share per-run state (the current document), which lives in a
ToolContext so that concurrent runs never see each other's state.
"""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..corpus import Corpus, Document, base_title
from ..errors import InputError, ToolError, UnknownToolError
from .calculator import calculate as _calculate
from .calculator import format_number
from .matching import closest_sentences, prefer_named, sentences_with

__all__ = ["Tool", "tool", "Toolbox", "ToolContext", "default_tools", "FINISH"]

FINISH = "finish"
_SIMILAR = 5  # titles listed when a search has no exact match


@dataclass
class ToolContext:
    """Per-run state shared by the tools of one run: the corpus and the current document."""

    corpus: Corpus | None = None
    document: Document | None = None  # the document the last search opened
    lookup_keyword: str = ""  # the keyword of the last lookup
    lookup_index: int = 0  # how many of its matches were already returned
    retrieval: str = "bm25"  # how search ranks documents when no title matches exactly
    exhausted: bool = False  # the last tool call had nothing more to give: the same call again says the same
    thought: str = ""  # the thought of the step whose action runs now (the agent sets it; the loop guard reads it)
    loop: str = ""  # the loop guard on the last call: "" none, "notice" pointed out, "force" the answer is due
    task: str = ""  # the run's question: search prefers the namesake whose qualifier it names ("the novel X")
    extra: dict[str, Any] = field(default_factory=dict)  # for users' tools
    _last_thought: str = field(default="", repr=False)
    _seen: set[str] = field(default_factory=set, repr=False)  # observations the run's tools returned
    _noticed: bool = field(default=False, repr=False)  # a loop was pointed out once already

    @property
    def noticed(self) -> bool:
        """A loop was pointed out once already in this run: the next one ends it."""
        return self._noticed

    def guard(self, observation: str, continuing: bool = False) -> str:
        """The loop guard: the same thought as the step before, or an observation seen earlier in the run, is
        pointed out in the observation the first time; the next time ``loop`` becomes "force" and the
        agent stops the run for its answer (as it does for the same action twice, see ``exhausted``).
        ``continuing``: the call repeats the last lookup, so the same thought is expected there.
        """
        thought = " ".join(self.thought.lower().split())
        same_thought = bool(thought) and thought == self._last_thought and not continuing
        same_observation = observation in self._seen
        self._last_thought = thought
        self._seen.add(observation)
        if not (same_thought or same_observation):
            return observation
        what = "the same thought as your last step" if same_thought else "an observation you have already seen"
        if self._noticed:
            self.loop = "force"
            return f"You are going in circles: this is {what}. Give your final answer now."
        self._noticed, self.loop = True, "notice"
        return f"{observation} (Note: this is {what}. Try something different, or give your answer.)"


@dataclass
class Tool:
    """A callable the agent can name in an action: ``name[argument]``."""

    name: str
    description: str
    function: Callable[..., Any]
    parameters: list[str] = field(default_factory=list)  # the argument names, in order
    argument_hint: str = ""  # shown in the prompt: search[entity]
    wants_context: bool = False  # the function takes a ``context`` keyword

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise InputError(f"Tool name {self.name!r} must be lower-case letters, digits and '_', starting with a letter.")
        if not self.argument_hint:
            self.argument_hint = ", ".join(self.parameters)
        # Read the signature once: tools are called at every step.
        params = inspect.signature(self.function).parameters
        self._defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
        self._kinds = {name: _annotation_type(params[name].annotation) for name in self.parameters}

    @property
    def signature(self) -> str:
        return f"{self.name}[{self.argument_hint}]"

    def __call__(self, argument: str = "", context: ToolContext | None = None) -> str:
        """Run the tool on the bracketed argument text; the result is the observation text."""
        values = self._split(argument)
        kwargs = {"context": context or ToolContext()} if self.wants_context else {}
        result = self.function(*values, **kwargs)
        if isinstance(result, float | int) and not isinstance(result, bool):
            return format_number(result)
        return "" if result is None else str(result)

    def _split(self, argument: str) -> list[Any]:
        """One parameter takes the whole text; several split it at commas, converted by annotation."""
        n = len(self.parameters)
        if n == 0:
            return []
        if n == 1:
            return [self._convert(self.parameters[0], argument)]
        parts = [p.strip() for p in argument.split(",", n - 1)]
        required = [p for p in self.parameters if p not in self._defaults]
        if len(parts) < len(required):
            raise ToolError(f"{self.name} needs {len(required)} arguments separated by commas: {self.signature}.")
        return [self._convert(name, part) for name, part in zip(self.parameters, parts)]

    def _convert(self, name: str, text: str) -> Any:
        kind = self._kinds[name]
        if kind in (int, float):
            try:
                return kind(text.strip())
            except ValueError as err:
                raise ToolError(f"{self.name}: argument '{name}' must be a number, got {text!r}.") from err
        if kind is bool:
            return text.strip().lower() in ("1", "true", "yes")
        return text


def _annotation_type(annotation: Any) -> type:
    """int, float, bool or str for an annotation (a type, or its name under postponed evaluation)."""
    if isinstance(annotation, type):
        return annotation
    return {"int": int, "float": float, "bool": bool}.get(str(annotation), str)


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None):
    """Turn a function into a Tool; name, description and arguments come from the function.

    Use bare (``@tool``) or with overrides (``@tool(name="wiki")``). A parameter called ``context``
    receives the run's ToolContext and is not shown to the model.
    """

    def wrap(fn: Callable[..., Any]) -> Tool:
        doc = inspect.getdoc(fn) or ""
        desc = description or doc.split("\n\n")[0].replace("\n", " ").strip()
        if not desc:
            raise InputError(
                f"Tool {fn.__name__!r} has no description: give the function a docstring or pass description=..."
            )
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "context"]
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise InputError(f"Tool {fn.__name__!r}: *args and **kwargs cannot be named in an action; list each argument.")
        return Tool(
            name=(name or fn.__name__).lower(),
            description=desc,
            function=fn,
            parameters=[p.name for p in params],
            wants_context="context" in inspect.signature(fn).parameters,
        )

    return wrap(function) if function is not None else wrap


class Toolbox:
    """The tools of an agent, by name. Lookup is case-insensitive and forgives common aliases."""

    ALIASES = {"answer": FINISH, "final_answer": FINISH, "final": FINISH, "calc": "calculate",
               "calculator": "calculate", "compute": "calculate", "find": "lookup", "wikipedia": "search"}

    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools: dict[str, Tool] = {}
        for t in tools:
            if t.name in self.tools:
                raise InputError(f"Two tools are named {t.name!r}; tool names must be unique.")
            self.tools[t.name] = t

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) is not None

    def __iter__(self):
        return iter(self.tools.values())

    def __len__(self) -> int:
        return len(self.tools)

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    def resolve(self, name: str) -> str | None:
        """The canonical tool name for what the model wrote, or None."""
        key = re.sub(r"[\s\-]+", "_", name.strip().lower())
        if key in self.tools:
            return key
        alias = self.ALIASES.get(key)
        return alias if alias in self.tools else None

    def get(self, name: str) -> Tool:
        resolved = self.resolve(name)
        if resolved is None:
            raise UnknownToolError(self.unknown_message(name))
        return self.tools[resolved]

    def unknown_message(self, name: str) -> str:
        return f"Unknown tool {name!r}. Valid tools: {', '.join(t.signature for t in self)}."

    def describe(self, style: str = "plain", overrides: dict[str, str] | None = None) -> str:
        """The tool list as it appears in the prompt; ``overrides`` replace descriptions by tool name."""
        overrides = overrides or {}
        text = {t.name: overrides.get(t.name) or t.description for t in self}
        if style == "numbered":
            return "\n".join(f"({i}) {t.signature}, {text[t.name]}" for i, t in enumerate(self, 1))
        return "\n".join(f"- {t.signature}: {text[t.name]}" for t in self)

    def run(self, name: str, argument: str, context: ToolContext) -> str:
        """Run a tool; a failure is raised as ToolError (the agent turns it into an observation)."""
        t = self.get(name)
        # The same lookup again walks through its results: the agent's repeat rule judges it, not the thought.
        continuing = context is not None and t.name == "lookup" and bool(context.lookup_keyword) and (
            argument.strip().lower() == context.lookup_keyword)
        if context is not None:
            context.exhausted, context.loop = False, ""  # a tool sets exhausted when it has nothing more to give
        try:
            observation = t(argument, context)
        except ToolError:
            raise
        except Exception as err:  # a user's tool can fail in any way; the run must go on
            raise ToolError(f"{t.name} failed: {type(err).__name__}: {err}") from err
        if context is None or t.name == FINISH:
            return observation
        return context.guard(observation, continuing)

    def subset(self, names: Iterable[str]) -> "Toolbox":
        return Toolbox(self.get(n) for n in names)


# ---------------------------------------------------------------- built-in tools


def _need_corpus(context: ToolContext) -> Corpus:
    if context.corpus is None or len(context.corpus) == 0:
        raise ToolError("No knowledge corpus is loaded, so there is nothing to search.")
    return context.corpus


def _named_in_task(query: str, corpus: Corpus, task: str) -> list[str]:
    """The title spelled like ``query`` (difflib ratio 0.6 or more) whose name the run's question contains."""
    if not task:
        return []
    text = task.lower()
    return [t for t in difflib.get_close_matches(query, corpus.titles, n=5, cutoff=0.6)
            if re.search(rf"\b{re.escape(base_title(t).lower())}\b", text)][:1]


@tool(name="search")
def _search(entity: str, context: ToolContext) -> str:
    """Search the knowledge base for an entity and return the opening sentences of its article.

    The exact title first (case, quotes and brackets aside); then the title in another case or punctuation,
    without its qualifier ("Marl" for "Marl (river)") or an alias (``Corpus.matches``), listing the other
    articles that bear the name as "Similar: ..."; then a near spelling or the retrieval method's best match.
    (Only the first paragraph of this docstring is the tool's description in the prompt.)
    """
    corpus = _need_corpus(context)
    query = entity.strip()
    if not query:
        raise ToolError("search needs an entity, e.g. search[Varnholt].")
    doc = corpus.get(query)
    if doc is not None:  # the exact title: its opening, and the other articles the name may mean
        others = [d.title for d in corpus.matches(base_title(doc.title)) if d is not doc][:_SIMILAR]
        return _open(context, doc) + (f" Similar: {', '.join(others)}." if others else "")
    named = prefer_named(corpus.matches(query), context.task)  # another case or punctuation, no qualifier, an alias
    if len(named) == 1:
        return _open(context, named[0])
    if named:
        doc, others = named[0], [d.title for d in named[1:]][:_SIMILAR]
        return f"Best match: {doc.title}. {_open(context, doc)} Similar: {', '.join(others)}."
    # A near-spelling of a title wins (a typo), or one the question names (a small model garbles "Brobesk" into
    # "Brosk" though the question spells it out); otherwise the retrieval method ranks.
    spelled = difflib.get_close_matches(query, corpus.titles, n=1, cutoff=0.85) or _named_in_task(query, corpus,
                                                                                                  context.task)
    ranked = [h.document.title for h in corpus.search(query, k=_SIMILAR + 1, method=context.retrieval)]
    titles = list(dict.fromkeys(spelled + ranked))
    if not titles:
        context.document = None
        close = corpus.similar_titles(query, k=_SIMILAR)
        hint = f" Similar: {', '.join(close)}." if close else ""
        return f"Could not find {query}.{hint}"
    doc, similar = corpus.get(titles[0]), titles[1 : _SIMILAR + 1]
    tail = f" Similar: {', '.join(similar)}." if similar else ""
    return f"Could not find {query}. Best match: {doc.title}. {_open(context, doc)}{tail}"


OPENING = 3  # sentences a search shows of the article it opens


def _open(context: ToolContext, doc: Document) -> str:
    """Make ``doc`` the current article (lookups start again) and return its opening sentences."""
    context.document, context.lookup_keyword, context.lookup_index = doc, "", 0
    return " ".join(doc.sentences[:OPENING])


@tool(name="lookup")
def _lookup(keyword: str, context: ToolContext) -> str:
    """Return the next sentence containing the keyword in the article of the last search.

    The keyword as written, in any case; if no sentence has it, every word of it by stem ("founding" finds
    "founded"). The observation counts the results and says how many the same lookup still has.
    """
    if context.document is None:
        raise ToolError("No article is open: search for an entity first, then lookup a keyword in it.")
    key = keyword.strip().lower()
    if not key:
        raise ToolError("lookup needs a keyword, e.g. lookup[population].")
    matches = sentences_with(key, context.document.sentences)  # as written in any case, else by word stem
    if key != context.lookup_keyword:
        context.lookup_keyword, context.lookup_index = key, 0
    if not matches:  # real text says "was born in" where a lookup asks for "birthplace": offer the nearest
        context.exhausted = True
        closest = closest_sentences(key, context.document.sentences, shown=OPENING)
        hint = f" Closest: {' '.join(closest)}" if closest else ""
        return f"No sentence of {context.document.title} mentions {keyword.strip()!r}.{hint}"
    if context.lookup_index >= len(matches):
        context.exhausted = True
        return "No more results."
    context.lookup_index += 1
    left = len(matches) - context.lookup_index
    more = f" ({left} more result{'s' if left > 1 else ''}.)" if left else ""  # the same lookup again gives the next
    return f"(Result {context.lookup_index} / {len(matches)}) {matches[context.lookup_index - 1]}{more}"


@tool(name="calculate")
def _calculate_tool(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / // % ** and parentheses."""
    return format_number(_calculate(expression))


@tool(name=FINISH)
def _finish(answer: str) -> str:
    """Finish the task and return the answer."""
    return answer.strip()


def default_tools(include: Iterable[str] = ("search", "lookup", "calculate", FINISH)) -> Toolbox:
    """The built-in tools, in the order the prompt lists them."""
    builtin = {t.name: t for t in (_search, _lookup, _calculate_tool, _finish)}
    names = list(include)
    unknown = [n for n in names if n not in builtin]
    if unknown:
        raise InputError(f"Unknown built-in tool(s) {unknown}. Available: {', '.join(builtin)}.")
    return Toolbox(builtin[n] for n in names)
