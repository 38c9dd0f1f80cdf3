"""Built-in tools, the @tool decorator and the toolbox."""

import pytest

from workbench.errors import InputError, ToolError, UnknownToolError
from workbench.tools import ToolContext, Toolbox, default_tools, tool


@pytest.fixture
def ctx(corpus):
    return ToolContext(corpus=corpus)


TOOLS = default_tools()


def test_search_exact_returns_the_opening_three_sentences(ctx):
    out = TOOLS.run("search", "varnholt", ctx)
    assert out == "Varnholt is a city in Quessaland. It lies on the river Drume. It was founded in 1312."
    assert ctx.document.title == "Varnholt"


def test_search_misspelled_opens_the_best_match_and_lists_similar(ctx):
    out = TOOLS.run("search", "Varnhold", ctx)
    assert out.startswith("Could not find Varnhold. Best match: Varnholt. Varnholt is a city")
    assert ctx.document.title == "Varnholt"


def test_search_by_description_uses_retrieval(ctx):
    out = TOOLS.run("search", "river 412 km", ctx)
    assert "Best match: Drume." in out and "Similar:" in out


def test_search_nothing_matches(ctx):
    out = TOOLS.run("search", "Zzyzx Qwv", ctx)
    assert out.startswith("Could not find Zzyzx Qwv.")
    assert ctx.document is None


def test_search_without_a_corpus_is_a_tool_error():
    with pytest.raises(ToolError, match="No knowledge corpus"):
        TOOLS.run("search", "x", ToolContext())


def test_lookup_walks_through_matches_in_the_current_document(ctx):
    TOOLS.run("search", "Lio Brandt", ctx)
    assert TOOLS.run("lookup", "Brandt", ctx) == "(Result 1 / 3) Lio Brandt is a novelist."
    assert TOOLS.run("lookup", "brandt", ctx) == "(Result 2 / 3) Brandt was born in Varnholt in 1931."
    assert TOOLS.run("lookup", "novelist", ctx) == "(Result 1 / 1) Lio Brandt is a novelist."
    assert TOOLS.run("lookup", "novelist", ctx) == "No more results."
    assert "mentions 'zebra'" in TOOLS.run("lookup", "zebra", ctx)


def test_lookup_reaches_sentences_search_did_not_show(ctx):
    TOOLS.run("search", "Varnholt", ctx)
    assert TOOLS.run("lookup", "population", ctx) == "(Result 1 / 1) Its population is 48,200."


def test_lookup_before_search_names_the_fix(ctx):
    with pytest.raises(ToolError, match="search for an entity first"):
        TOOLS.run("lookup", "population", ctx)


def test_calculate_and_finish(ctx):
    assert TOOLS.run("calculate", "48,200 - 1,200", ctx) == "47000"
    assert TOOLS.run("finish", "  1312 ", ctx) == "1312"
    with pytest.raises(ToolError, match="Division by zero"):
        TOOLS.run("calculate", "1/0", ctx)


def test_toolbox_resolves_case_and_aliases():
    assert TOOLS.resolve("Search") == "search"
    assert TOOLS.resolve("FINAL ANSWER") == "finish"
    assert TOOLS.resolve("calculator") == "calculate"
    assert TOOLS.resolve("google") is None
    with pytest.raises(UnknownToolError, match=r"Unknown tool 'google'. Valid tools: search\[entity\]"):
        TOOLS.get("google")


def test_describe_styles():
    assert TOOLS.describe().splitlines()[0].startswith("- search[entity]: Search the knowledge base")
    assert TOOLS.describe("numbered").splitlines()[3].startswith("(4) finish[answer]")


def test_tool_decorator_takes_name_description_and_arguments_from_the_function():
    @tool
    def population_density(people: int, area_km2: float = 1.0) -> float:
        """People per square kilometre.

        Longer text that is not part of the description.
        """
        return people / area_km2

    assert population_density.name == "population_density"
    assert population_density.description == "People per square kilometre."
    assert population_density.parameters == ["people", "area_km2"]
    assert population_density.signature == "population_density[people, area_km2]"
    assert population_density("100, 4") == "25"
    assert population_density("100") == "100"
    with pytest.raises(ToolError, match="must be a number"):
        population_density("many, 4")


def test_tool_decorator_overrides_and_context():
    @tool(name="Wiki", description="Look in the wiki.")
    def lookup_wiki(term: str, context=None) -> str:
        return f"{term}:{type(context).__name__}"

    assert lookup_wiki.name == "wiki" and lookup_wiki.parameters == ["term"]
    assert lookup_wiki("x") == "x:ToolContext"


def test_tool_without_docstring_is_refused():
    with pytest.raises(InputError, match="docstring"):
        @tool
        def nameless(x: str) -> str:
            return x


def test_a_user_tool_that_raises_becomes_a_tool_error():
    @tool
    def broken(x: str) -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    box = Toolbox([broken])
    with pytest.raises(ToolError, match="broken failed: RuntimeError: disk on fire"):
        box.run("broken", "x", ToolContext())


def test_duplicate_and_unknown_builtin_names():
    with pytest.raises(InputError, match="unique"):
        Toolbox([TOOLS.get("search"), TOOLS.get("search")])
    with pytest.raises(InputError, match="Available: search, lookup, calculate, finish"):
        default_tools(["search", "browse"])
