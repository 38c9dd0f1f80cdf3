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
    # The count says how many results the same lookup still has to give.
    assert TOOLS.run("lookup", "Brandt", ctx) == "(Result 1 / 3) Lio Brandt is a novelist. (2 more results.)"
    assert TOOLS.run("lookup", "brandt", ctx) == "(Result 2 / 3) Brandt was born in Varnholt in 1931. (1 more result.)"
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


# ---------------------------------------------------------------- real text: qualifiers, aliases, stems, loops


@pytest.fixture
def marl():
    from workbench.corpus import Corpus, Document

    return ToolContext(corpus=Corpus([
        Document("Marl (river)", "The Marl is a river in Ostvar. It rises on Mount Kell. It is 310 km long."),
        Document("Marl (city)", "Marl is a city on the river Marl. It was founded in 1204. It has 40,100 inhabitants."),
        Document("Marl Brewing", "Marl Brewing is a brewery in Marl. It was founded by Ada Sorn in 1871."),
        Document("Kiss and Tell (1945 film)", "Kiss and Tell is a 1945 comedy film. It stars Shirley Temple."),
        Document("Ostvar", "Ostvar is a country. Its capital is Marl. The Ostvarian state was founded in 1602.",
                 meta={"aliases": ["Republic of Ostvar", "Ostvaria"]}),
        Document("Café Noir", "Café Noir is a novel. It was published in 1932. Its publisher was Hale Press."),
    ], name="real"))


def test_search_without_the_qualifier_opens_the_only_article_that_bears_the_name(marl):
    out = TOOLS.run("search", "Kiss and Tell", marl)
    assert out == "Kiss and Tell is a 1945 comedy film. It stars Shirley Temple."
    assert marl.document.title == "Kiss and Tell (1945 film)"


def test_search_in_another_case_or_punctuation_or_by_alias(marl):
    assert TOOLS.run("search", "KISS AND TELL, 1945 FILM", marl).startswith("Kiss and Tell is a 1945 comedy film.")
    assert TOOLS.run("search", "cafe noir", marl).startswith("Café Noir is a novel.")
    assert TOOLS.run("search", "the Republic of Ostvar", marl).startswith("Ostvar is a country.")
    assert marl.document.title == "Ostvar"


def test_a_name_several_articles_bear_opens_one_and_lists_the_others(marl):
    out = TOOLS.run("search", "Marl", marl)
    assert out == ("Best match: Marl (river). The Marl is a river in Ostvar. It rises on Mount Kell. It is 310 km long. "
                   "Similar: Marl (city).")
    # The exact title opens that article, and still says which others share its name.
    out = TOOLS.run("search", "Marl (city)", marl)
    assert out.startswith("Marl is a city on the river Marl.") and out.endswith("Similar: Marl (river).")


def test_an_exact_title_without_namesakes_reads_as_before(ctx):
    assert TOOLS.run("search", "Drume", ctx) == "The Drume is a river in Quessaland. It is 412 km long. It rises on Mount Ossa."


def test_lookup_by_word_stem_when_the_keyword_is_not_written_as_such(marl):
    TOOLS.run("search", "Café Noir", marl)
    # "publishing" is nowhere in the article; "published" and "publisher" share its stem.
    assert TOOLS.run("lookup", "Publishing", marl) == "(Result 1 / 2) It was published in 1932. (1 more result.)"
    assert TOOLS.run("lookup", "publishing", marl) == "(Result 2 / 2) Its publisher was Hale Press."
    TOOLS.run("search", "Ostvar", marl)
    assert TOOLS.run("lookup", "founding", marl) == "(Result 1 / 1) The Ostvarian state was founded in 1602."
    assert TOOLS.run("lookup", "CAPITAL", marl) == "(Result 1 / 1) Its capital is Marl."


def test_lookup_says_how_many_results_remain(ctx):
    TOOLS.run("search", "Lio Brandt", ctx)
    assert TOOLS.run("lookup", "brandt", ctx).endswith("(2 more results.)")
    assert TOOLS.run("lookup", "brandt", ctx).endswith("(1 more result.)")
    assert TOOLS.run("lookup", "brandt", ctx) == "(Result 3 / 3) Brandt wrote The Glass Bell."
    assert TOOLS.run("lookup", "brandt", ctx) == "No more results."


def test_the_loop_guard_points_out_a_repeated_observation_once_then_forces(ctx):
    first = TOOLS.run("search", "Drume", ctx)
    again = TOOLS.run("search", "drume river", ctx)  # another call, the same article's opening
    assert again.startswith("Could not find drume river.")  # a different observation: not a loop
    ctx.thought = "I look at the Drume."
    assert TOOLS.run("search", "the Drume", ctx) == first + (
        " (Note: this is an observation you have already seen. Try something different, or give your answer.)")
    assert ctx.loop == "notice"
    ctx.thought = "Something new."
    assert TOOLS.run("search", "Varnholt", ctx).startswith("Varnholt is a city") and ctx.loop == ""
    ctx.thought = "Something new."  # the same thought twice in a row: a loop, pointed out already once
    out = TOOLS.run("search", "Mount Ossa", ctx)
    assert ctx.loop == "force" and out.startswith("You are going in circles: this is the same thought")


def test_the_agent_points_out_a_loop_once_then_asks_for_the_answer(corpus):
    from workbench.agent import Agent
    from workbench.testing import ScriptedModel

    script = [" I search it.\nAction: search[Varnholt]", " I search it.\nAction: search[Drume]",
              " Other.\nAction: search[Quessaland]", " Other.\nAction: search[Mount Ossa]", " So 1312.", "1312]"]
    trace = Agent(ScriptedModel(script), corpus=corpus).run("When was Varnholt founded?")
    assert "(Note: this is the same thought as your last step." in trace.steps[1].observation
    assert not trace.steps[1].error and not trace.steps[2].error
    assert trace.steps[3].error_kind == "repeat" and trace.steps[3].observation.startswith("You are going in circles")
    assert trace.stop_reason == "repeated_action" and trace.answer == "1312" and len(trace.steps) == 5


def test_the_old_demo_worlds_gold_observations_are_unchanged():
    """Every gold observation stored in demo_data/ (made with the tools as they were) is what the tools say now."""
    from workbench.world import load_world

    world = load_world()
    for split in ("train", "dev", "test"):
        for task in world.tasks[split]:
            context = ToolContext(corpus=world.corpus)
            for step in task.trajectory[:-1]:
                assert TOOLS.run(step.action, step.argument, context) == step.observation, task.id


def test_a_lookup_nothing_matches_offers_the_closest_sentence_in_meaning(marl):
    TOOLS.run("search", "Marl (city)", marl)
    # Neither "population" nor its stem is written; the sentence that gives it is offered first, marked as such.
    out = TOOLS.run("lookup", "population", marl)
    assert out.startswith("No sentence of Marl (city) mentions 'population'. Closest: It has 40,100 inhabitants.")
    assert marl.exhausted  # the same lookup again is a repeat, as before


def test_the_closest_sentences_pass_over_the_opening_and_keep_a_close_second():
    from workbench.tools.matching import closest_sentences

    article = ["Gosin Oustalsen was a novelist.", "He is remembered as a careful worker.", "He wrote two novels.",
               "His birthplace was Gufiesk.", "His birth date is September 28, 1896.", "He travelled widely."]
    # Nothing says "born": both birth sentences are offered (the encoder ranks the birthplace a little higher),
    # the unrelated one is not; nor is the opening, which the search showed already.
    assert set(closest_sentences("born", article, shown=3)) == {article[3], article[4]}
    country = ["Trainavia is a country.", "The longest river to flow through the country is the Sistes.",
               "Trainavia has a population of 1,330,000.", "Trainavia is divided into provinces.",
               "With an area of 175,300 square kilometres, it is among the region's states."]
    assert closest_sentences("length", country, shown=3)[0] == country[4]  # not the river of the opening
    assert closest_sentences("length", country)[0] == country[1]  # nothing passed over: the river comes first
    assert closest_sentences("length", country[:3], shown=3)[0] == country[1]  # no sentence past the opening
    # However far the best one is from the keyword (here a negative cosine), it is offered, alone.
    cairo = ["Cairo is the capital of Egypt.", "It is a large city.", "The city lies on the Nile.",
             "The city of Cairo was founded in 969 by the Fatimid dynasty.",
             "Its historic centre was designated a UNESCO World Heritage Site in 1979."]
    assert closest_sentences("flows", cairo, shown=3) == [cairo[4]]


def test_without_the_encoder_the_closest_sentence_is_a_word_prefix_guess(monkeypatch):
    from workbench.corpus import MiniLMEncoder
    from workbench.tools.matching import closest_sentences

    def unavailable(cls):
        raise RuntimeError("no encoder installed")

    monkeypatch.setattr(MiniLMEncoder, "shared", classmethod(unavailable))
    sentences = ["It is a shipbuilder.", "The company is headquartered in Stoloulvar.", "It employs 140 people."]
    assert closest_sentences("headquarters", sentences) == ["The company is headquartered in Stoloulvar."]
    assert closest_sentences("birthplace", sentences) == []  # nothing alike: no guess


def test_search_opens_the_namesake_the_question_names(marl):
    marl.task = "When was the city of Marl founded?"
    out = TOOLS.run("search", "marl", marl)
    assert out.startswith("Best match: Marl (city). Marl is a city on the river Marl.")
    assert out.endswith("Similar: Marl (river).")
    both = "How many years after the founding of the city where it flows does the river Marl rise?"
    fresh = ToolContext(corpus=marl.corpus, task=both)  # both named: the one right before the name
    assert TOOLS.run("search", "Marl", fresh).startswith("Best match: Marl (river).")
    fresh = ToolContext(corpus=marl.corpus, task="Where was the brewery of the city of Marl founded?")
    assert TOOLS.run("search", "Marl", fresh).startswith("Best match: Marl (city).")
    marl.task = "Who founded Marl?"  # no qualifier named: the order of the corpus's matches stays
    assert TOOLS.run("search", "marl", marl).startswith("Best match: Marl (river).")


def test_a_garbled_name_the_question_spells_out_opens_that_article():
    from workbench.corpus import Corpus, Document

    corpus = Corpus([Document("Brobesk", "Brobesk is a city."), Document("Brulost", "Brulost is a town.")])
    # "Brosk" is too far from either title for a typo and retrieval finds no word of it: only the question helps.
    alone = ToolContext(corpus=corpus)
    assert TOOLS.run("search", "Brosk", alone) == "Could not find Brosk. Similar: Brobesk, Brulost."
    asked = ToolContext(corpus=corpus, task="What is the population of Brobesk?")
    assert TOOLS.run("search", "Brosk", asked) == "Could not find Brosk. Best match: Brobesk. Brobesk is a city."
