"""The words of the demo world: invented names, article sentences and question templates.

Everything a reader sees in the world's articles and tasks is written here, apart from the logic
in :mod:`workbench.world`. Keeping the words in one place lets every invented name be checked
against every template word: a name hidden inside "population" or "capital" would make the
substring test that decides which entities a task touches lie.

    >>> import random
    >>> maker = NameMaker(random.Random(0))
    >>> city = maker.take(lambda: maker.word(2, "holt"))
    >>> city.endswith("holt"), maker.acceptable(city), maker.acceptable("Population")
    (True, False, False)
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS", "NOUNS", "REQUIRED", "Fact", "Unit", "FACTS", "BRIDGES", "COMPARISONS", "NUMERIC", "ARITHMETIC",
    "OPERATIONS", "THOUGHTS", "OPENINGS", "UNITS", "build_article", "opening_words", "fix_articles",
    "fmt_number", "ref",
    "GENRES", "INDUSTRIES", "KEYWORDS",
]

KINDS = ("country", "city", "river", "mountain", "person", "book", "company")
NOUNS = {"country": "country", "city": "city", "river": "river", "mountain": "mountain", "person": "person",
         "book": "novel", "company": "company"}
GENRES = ("historical", "gothic", "comic", "pastoral", "detective", "seafaring", "romantic", "satirical")
INDUSTRIES = {"Works": "engineering", "Foundry": "metalworking", "Shipyards": "shipbuilding", "Textiles": "textile",
              "Optics": "optics", "Brewing": "brewing", "Press": "publishing", "Ceramics": "ceramics",
              "Motors": "motor", "Mills": "milling", "Instruments": "instrument", "Railways": "railway"}
_BOOK_NOUNS = ("Lantern", "Orchard", "Bell", "Harbour", "Mirror", "Garden", "Ferry", "Tower", "Weaver", "Ledger",
               "Glasshouse", "Salt Road", "Lighthouse", "Embers", "Carousel", "Songbird")
_BOOK_PATTERNS = ("The {noun} of {place}", "{season} in {place}", "Letters from {place}", "The Last {noun} of {place}",
                  "{place} Nights", "A House in {place}", "The {place} {noun}", "Return to {place}")
_SEASONS = ("Winter", "Spring", "Summer", "Autumn")


def fmt_number(value: int) -> str:
    """Numbers as articles write them: thousands separators from 10,000 up (years stay plain)."""
    return f"{value:,}" if value >= 10000 else str(value)


def fix_articles(text: str) -> str:
    """Templates write "a" before words that vary; make it "an" before a vowel ("an engineer")."""
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)


def ref(title: str, kind: str) -> str:
    """How prose names an entity: rivers take the article ("the Drume"), everything else is bare."""
    return f"the {title}" if kind == "river" else title


# ---------------------------------------------------------------- names

@dataclass(frozen=True)
class Unit:
    """One article sentence: the attributes it states and the keyword a lookup finds it by."""

    attrs: tuple[str, ...]
    keyword: str  # occurs in this sentence and in no other sentence of the article
    templates: tuple[str, ...]


# The first sentence names the entity and its kind. Placeholders are attributes or derived words.
OPENINGS = {
    "country": ("{title} is a country.", "{title} is a {size} country."),
    "city": ("{title} is a city in {country}.", "{title} is a {size} city in {country}.",
             "{title} is a city of {country}."),
    "river": ("The {title} is a river in {country}.", "The {title} is a {size} river in {country}.",
              "The {title} is a river that flows through {country}."),
    "mountain": ("{title} is a mountain in {country}.", "{title} is a {size} mountain in {country}.",
                 "{title} is a mountain of {country}."),
    "person": ("{title} {was} a {occupation}.", "{title} {was} a {occupation} of the {century} century.",
               "{title} {was} a celebrated {occupation}."),
    "book": ("{title} is a {genre} novel by {author}.", "{title} is a novel by {author}.",
             "{title} is a {genre} novel."),
    "company": ("{title} is a {industry} company.", "{title} is a {industry} company based in {hq}."),
}
_U = Unit
UNITS = {
    "country": (
        _U(("capital",), "capital", ("Its capital is {capital}.", "The capital of the country is {capital}.")),
        _U(("population",), "population", ("It has a population of {population}.", "Its population is {population}.")),
        _U(("area",), "area",
           ("It covers an area of {area} square kilometres.", "Its area is {area} square kilometres.")),
        _U(("independence",), "independence", ("It gained independence in {independence}.",
                                               "Its independence dates from {independence}.")),
        _U(("highest",), "highest",
           ("Its highest mountain is {highest}.", "The highest peak in the country is {highest}.")),
        _U(("longest",), "longest",
           ("Its longest river is the {longest}.", "The longest river in the country is the {longest}.")),
    ),
    "city": (
        _U(("capital_of",), "capital", ("It is the capital of {capital_of}.",)),
        _U(("river",), "river", ("It lies on the {river} river.", "The {river} river flows through it.",
                                 "It stands on the banks of the {river} river.")),
        _U(("founded",), "founded", ("It was founded in {founded}.", "The town was founded in {founded}.")),
        _U(("population",), "population", ("Its population is {population}.", "It has a population of {population}.",
                                           "The last census counted a population of {population}.")),
        _U(("elevation",), "elevation", ("It lies at an elevation of {elevation} metres.",
                                         "Its elevation is {elevation} metres above sea level.")),
    ),
    "river": (
        _U(("length",), "length", ("Its length is {length} kilometres.", "It is {length} kilometres in length.")),
        _U(("source",), "source", ("Its source is on the slopes of {source}.", "It has its source on {source}.")),
        _U(("discharge",), "discharge", ("Its mean discharge is {discharge} cubic metres per second.",)),
        _U(("cities",), "banks", ("Cities on its banks include {cities}.",)),
    ),
    "mountain": (
        _U(("height",), "height", ("Its height is {height} metres.", "It reaches a height of {height} metres.")),
        _U(("climbed",), "climbed",
           ("It was first climbed in {climbed}.", "Its summit was first climbed in {climbed}.")),
        _U(("rivers",), "source", ("It is the source of {rivers}.",)),
    ),
    "person": (
        _U(("birth_year", "birthplace"), "born", ("{s} was born in {birthplace} in {birth_year}.",
                                                  "{s} was born in {birth_year} in {birthplace}.")),
        _U(("birth_year",), "born", ("{s} was born in {birth_year}.",)),
        _U(("birthplace",), "birthplace",
           ("{p} birthplace was {birthplace}.", "{p} birthplace is the city of {birthplace}.")),
        _U(("died",), "died", ("{s} died in {died}.",)),
        _U(("books",), "wrote", ("{s} wrote {books}.",)),
        _U(("companies",), "founded", ("{s} founded {companies}.",)),
        _U(("bridges",), "bridges", ("{s} designed {bridges} bridges.",)),
        _U(("paintings",), "paintings", ("{s} completed {paintings} paintings.",)),
        _U(("symphonies",), "symphonies", ("{s} wrote {symphonies} symphonies.",)),
    ),
    "book": (
        _U(("author",), "written", ("It was written by {author}.",)),
        _U(("genre",), "describe", ("Critics describe it as a {genre} novel.",)),
        _U(("published",), "published", ("It was published in {published}.", "It was first published in {published}.")),
        _U(("pages",), "pages", ("The first edition has {pages} pages.", "It runs to {pages} pages.")),
        _U(("setting",), "story", ("The story is set in {setting}.", "The story takes place in {setting}.")),
    ),
    "company": (
        _U(("founded", "founder"), "founded",
           ("It was founded in {founded} by {founder}.", "{founder} founded it in {founded}.")),
        _U(("founded",), "founded", ("It was founded in {founded}.",)),
        _U(("founder",), "founder", ("Its founder was {founder}.",)),
        _U(("hq",), "headquarters", ("Its headquarters are in {hq}.", "It has its headquarters in {hq}.")),
        _U(("employees",), "employs", ("It employs {employees} people.", "The company employs {employees} staff.")),
    ),
}
# Facts every article of a kind states (the links the task templates rely on).
REQUIRED = {"country": {"capital"}, "city": {"country", "river"}, "river": {"country", "length"},
            "mountain": {"country", "height"}, "person": {"occupation", "birth_year", "birthplace"},
            "book": {"author", "published"}, "company": {"founder", "founded", "hq"}}
KEYWORDS = tuple(sorted({u.keyword for units in UNITS.values() for u in units}))


def opening_words(k: str, a: dict[str, Any]) -> dict[str, str]:
    """Words the first sentence may use that are not facts: pronouns, tense, a size."""
    if k == "person":
        century = {18: "eighteenth", 19: "nineteenth", 20: "twentieth"}.get((a["birth_year"] + 29) // 100 + 1, "")
        alive = a.get("died") is None
        return {"s": a["pronoun"].capitalize(), "p": "Her" if a["pronoun"] == "she" else "His",
                "was": "is" if alive else "was", "century": "" if alive else century}
    people = a.get("population", 0)
    size = {"city": "small" if people < 20000 else "large" if people > 200000 else "mid-sized",
            "river": "short" if a.get("length", 0) < 300 else "long" if a.get("length", 0) > 1200 else "",
            "mountain": "snow-capped" if a.get("height", 0) > 4000 else "",
            "country": "small" if a.get("area", 0) < 60000 else "large" if a.get("area", 0) > 250000 else ""}.get(k, "")
    return {"s": "It", "p": "Its", "size": size}


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _text(attr: str, value: Any) -> str:
    if isinstance(value, int):
        return fmt_number(value)
    if isinstance(value, list):
        items = [f"the {v}" if attr == "rivers" else v for v in value]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return str(value)


def build_article(kind: str, title: str, values: dict[str, Any], extras: dict[str, str],
                  rng: random.Random) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """An article of 2-5 sentences, and where each stated attribute is: {attr: (sentence index, keyword)}.

    Attributes of ``values`` absent from the result were left out of the article (not stated).
    """
    fields = {**{k: _text(k, v) for k, v in values.items()}, **extras, "title": title}
    openings = [t for t in OPENINGS[kind] if all(fields.get(p) for p in _placeholders(t))]
    opening = rng.choice(openings)
    where = {a: (0, "") for a in sorted(_placeholders(opening)) if a in values}
    units = [u for u in UNITS[kind] if all(a in values for a in u.attrs)]
    rng.shuffle(units)
    chosen: list[Unit] = []
    for unit in units:
        if not any(a in where or any(a in c.attrs for c in chosen) for a in unit.attrs):
            chosen.append(unit)
    required = [u for u in chosen if set(u.attrs) & REQUIRED[kind]]
    length = rng.choices((2, 3, 4, 5), weights=(1, 3, 4, 4))[0]
    optional = [u for u in chosen if u not in required][: max(0, length - 1 - len(required))]
    sentences = [fix_articles(opening.format(**fields))]
    for unit in chosen:
        if unit in required or unit in optional:
            where.update({a: (len(sentences), unit.keyword) for a in unit.attrs})
            sentences.append(fix_articles(rng.choice(unit.templates).format(**fields)))
    return sentences, where


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Fact:
    """How questions and thoughts speak of one attribute. {e}/{E}: the entity, {v}: the value."""

    topic: str  # noun phrase: "founding year" -> "its founding year", "the founding year of Varnholt"
    question: str
    says: str


_F = Fact
FACTS = {
    ("city", "country"): _F("country", "In which country is {e}?", "{E} is in {v}"),
    ("city", "river"): _F("river", "On which river does {e} lie?", "{E} lies on the {v} river"),
    ("city", "founded"): _F("founding year", "When was {e} founded?", "{E} was founded in {v}"),
    ("city", "population"): _F("population", "What is the population of {e}?", "The population of {e} is {v}"),
    ("city", "elevation"): _F("elevation", "At what elevation does {e} lie, in metres?",
                              "{E} lies at an elevation of {v} metres"),
    ("river", "country"): _F("country", "In which country does {e} flow?", "{E} flows through {v}"),
    ("river", "length"): _F("length", "How long is {e}, in kilometres?", "{E} is {v} kilometres long"),
    ("river", "source"): _F("source", "On which mountain does {e} have its source?", "{E} has its source on {v}"),
    ("river", "discharge"): _F("mean discharge", "What is the mean discharge of {e}, in cubic metres per second?",
                               "The mean discharge of {e} is {v} cubic metres per second"),
    ("mountain", "country"): _F("country", "In which country does {e} stand?", "{E} stands in {v}"),
    ("mountain", "height"): _F("height", "How high is {e}, in metres?", "{E} is {v} metres high"),
    ("mountain", "climbed"): _F("year of first ascent", "In which year was {e} first climbed?",
                                "{E} was first climbed in {v}"),
    ("person", "occupation"): _F("occupation", "What was the occupation of {e}?", "{E} was a {v}"),
    ("person", "birth_year"): _F("birth year", "In which year was {e} born?", "{E} was born in {v}"),
    ("person", "birthplace"): _F("birthplace", "In which city was {e} born?", "{E} was born in {v}"),
    ("person", "died"): _F("year of death", "In which year did {e} die?", "{E} died in {v}"),
    ("person", "bridges"): _F("number of bridges", "How many bridges did {e} design?", "{E} designed {v} bridges"),
    ("person", "paintings"): _F("number of paintings", "How many paintings did {e} complete?",
                                "{E} completed {v} paintings"),
    ("person", "symphonies"): _F("number of symphonies", "How many symphonies did {e} write?",
                                 "{E} wrote {v} symphonies"),
    ("book", "author"): _F("author", "Who wrote {e}?", "{E} was written by {v}"),
    ("book", "genre"): _F("genre", "What kind of novel is {e}?", "{E} is a {v} novel"),
    ("book", "published"): _F("publication year", "In which year was {e} published?", "{E} was published in {v}"),
    ("book", "pages"): _F("number of pages", "How many pages does {e} have?", "{E} has {v} pages"),
    ("book", "setting"): _F("setting", "In which city is {e} set?", "{E} is set in {v}"),
    ("company", "founder"): _F("founder", "Who founded {e}?", "{E} was founded by {v}"),
    ("company", "founded"): _F("founding year", "In which year was {e} founded?", "{E} was founded in {v}"),
    ("company", "hq"): _F("headquarters", "In which city does {e} have its headquarters?",
                          "{E} has its headquarters in {v}"),
    ("company", "employees"): _F("number of employees", "How many people does {e} employ?", "{E} employs {v} people"),
    ("country", "capital"): _F("capital", "What is the capital of {e}?", "The capital of {e} is {v}"),
    ("country", "population"): _F("population", "What is the population of {e}?", "The population of {e} is {v}"),
    ("country", "area"): _F("area", "What is the area of {e}, in square kilometres?",
                            "{E} covers {v} square kilometres"),
    ("country", "independence"): _F("year of independence", "In which year did {e} gain independence?",
                                    "{E} gained independence in {v}"),
    ("country", "highest"): _F("highest mountain", "What is the highest mountain of {e}?",
                               "The highest mountain of {e} is {v}"),
    ("country", "longest"): _F("longest river", "What is the longest river of {e}?",
                               "The longest river of {e} is the {v}"),
}
# (kind A, link attribute of A, kind B, attribute of B asked for, question about A)
BRIDGES = (
    ("book", "author", "person", "birthplace", "In which city was the author of {e} born?"),
    ("book", "author", "person", "birth_year", "In which year was the author of {e} born?"),
    ("book", "author", "person", "died", "In which year did the author of {e} die?"),
    ("book", "setting", "city", "country", "In which country is the novel {e} set?"),
    ("book", "setting", "city", "population", "What is the population of the city where {e} is set?"),
    ("company", "founder", "person", "birth_year", "In which year was the founder of {e} born?"),
    ("company", "founder", "person", "birthplace", "In which city was the founder of {e} born?"),
    ("company", "hq", "city", "country", "In which country does {e} have its headquarters?"),
    ("company", "hq", "city", "founded", "When was the city where {e} has its headquarters founded?"),
    ("city", "river", "river", "length", "How long is the river on which {e} lies, in kilometres?"),
    ("city", "river", "river", "source", "On which mountain does the river of {e} have its source?"),
    ("river", "source", "mountain", "height", "How high is the mountain where {e} has its source, in metres?"),
    ("country", "capital", "city", "population", "What is the population of the capital of {e}?"),
    ("country", "capital", "city", "founded", "When was the capital of {e} founded?"),
    ("country", "highest", "mountain", "height", "How high is the highest mountain of {e}, in metres?"),
    ("country", "highest", "mountain", "climbed", "In which year was the highest mountain of {e} first climbed?"),
    ("country", "longest", "river", "length", "How long is the longest river of {e}, in kilometres?"),
    ("person", "birthplace", "city", "country", "In which country was {e} born?"),
)
# (kind, attribute, "max" or "min" wins, question, verdict about the winner {w})
COMPARISONS = (
    ("city", "population", "max", "Which city has the larger population, {a} or {b}?", "{w} has the larger population"),
    ("city", "founded", "min", "Which city was founded first, {a} or {b}?", "{w} was founded first"),
    ("city", "elevation", "max", "Which city lies at the higher elevation, {a} or {b}?", "{w} lies higher"),
    ("river", "length", "max", "Which river is longer, {a} or {b}?", "{w} is longer"),
    ("river", "discharge", "max", "Which river has the larger mean discharge, {a} or {b}?", "{w} carries more water"),
    ("mountain", "height", "max", "Which mountain is higher, {a} or {b}?", "{w} is higher"),
    ("mountain", "climbed", "min", "Which mountain was climbed first, {a} or {b}?", "{w} was climbed first"),
    ("person", "birth_year", "min", "Who was born first, {a} or {b}?", "{w} was born first"),
    ("person", "paintings", "max", "Which painter completed more paintings, {a} or {b}?", "{w} completed more"),
    ("person", "symphonies", "max", "Which composer wrote more symphonies, {a} or {b}?", "{w} wrote more"),
    ("person", "bridges", "max", "Which engineer designed more bridges, {a} or {b}?", "{w} designed more"),
    ("book", "published", "min", "Which novel was published first, {a} or {b}?", "{w} was published first"),
    ("book", "pages", "max", "Which novel has more pages, {a} or {b}?", "{w} has more pages"),
    ("company", "founded", "min", "Which company was founded first, {a} or {b}?", "{w} was founded first"),
    ("company", "employees", "max", "Which company has more employees, {a} or {b}?", "{w} has more employees"),
    ("country", "area", "max", "Which country is larger by area, {a} or {b}?", "{w} is larger"),
    ("country", "population", "max", "Which country has the larger population, {a} or {b}?", "{w} has more people"),
    ("country", "independence", "min", "Which country gained independence first, {a} or {b}?",
     "{w} was independent first"),
)
# (name, root kinds, question, operands as (root index, "attr" or "link>attr"), operation)
# sub: first minus second (always positive here); diff: larger minus smaller; sum; floordiv: first // second.
NUMERIC = (
    ("company_book_years", ("company", "book"),
     "How many years passed between the founding of {a} and the publication of {b}?",
     ((0, "founded"), (1, "published")), "diff"),
    ("author_age", ("book",), "How many years after the birth of its author was {a} published?",
     ((0, "published"), (0, "author>birth_year")), "sub"),
    ("founder_age", ("company",), "How many years after the birth of its founder was {a} founded?",
     ((0, "founded"), (0, "founder>birth_year")), "sub"),
    ("lifespan", ("person",), "How many years passed between the birth and the death of {a}?",
     ((0, "died"), (0, "birth_year")), "sub"),
    ("setting_age", ("book",), "How many years after the founding of the city where it is set was {a} published?",
     ((0, "published"), (0, "setting>founded")), "sub"),
    ("capital_age", ("country",), "How many years after the founding of its capital did {a} gain independence?",
     ((0, "independence"), (0, "capital>founded")), "sub"),
    ("density", ("country",), "What is the population density of {a} in people per square kilometre, rounded down?",
     ((0, "population"), (0, "area")), "floordiv"),
    ("city_population_sum", ("city", "city"), "What is the combined population of {a} and {b}?",
     ((0, "population"), (1, "population")), "sum"),
    ("city_founding_gap", ("city", "city"),
     "How many years passed between the founding of {a} and the founding of {b}?",
     ((0, "founded"), (1, "founded")), "diff"),
    ("mountain_height_gap", ("mountain", "mountain"), "How much higher is {a} than {b}, in metres?",
     ((0, "height"), (1, "height")), "sub"),
    ("river_length_sum", ("river", "river"), "What is the combined length of {a} and {b}, in kilometres?",
     ((0, "length"), (1, "length")), "sum"),
    ("company_staff_sum", ("company", "company"), "How many people do {a} and {b} employ together?",
     ((0, "employees"), (1, "employees")), "sum"),
    ("book_pages_sum", ("book", "book"), "How many pages do {a} and {b} have together?",
     ((0, "pages"), (1, "pages")), "sum"),
    ("birth_gap", ("person", "person"), "How many years passed between the births of {a} and {b}?",
     ((0, "birth_year"), (1, "birth_year")), "diff"),
)
OPERATIONS = {"sub": ("{0} - {1}", "the difference"), "diff": ("{0} - {1}", "the difference"),
              "sum": ("{0} + {1}", "their sum"),
              "floordiv": ("{0} // {1}", "the whole-number quotient")}
# (name, question, expression); a, b, c are drawn numbers and p = a * b, so every result is a whole number.
ARITHMETIC = (
    ("mul_add", "What is {a} * {b} + {c}?", "{a} * {b} + {c}"),
    ("mul_sub", "What is {a} * {b} - {c}?", "{a} * {b} - {c}"),
    ("sum_mul", "What is ({a} + {b}) * {c}?", "({a} + {b}) * {c}"),
    ("add_mul", "What is {a} + {b} * {c}?", "{a} + {b} * {c}"),
    ("sum3", "What is the sum of {a}, {b} and {c}?", "{a} + {b} + {c}"),
    ("divide", "What is {p} divided by {b}?", "{p} / {b}"),
    ("square", "What is {a} squared minus {c}?", "{a} ** 2 - {c}"),
    ("ferry", "A ferry carries {a} passengers on each crossing. How many passengers does it carry in {b} crossings?",
     "{a} * {b}"),
    ("bakery", "A bakery bakes {a} loaves a day. How many loaves does it bake in {b} days?", "{a} * {b}"),
    ("stamps", "{p} stamps are shared equally among {b} albums. How many stamps go in each album?", "{p} / {b}"),
    ("library",
     "A library has {a} shelves with {b} books each and {c} more books in boxes. How many books does it have?",
     "{a} * {b} + {c}"),
)
THOUGHTS = {
    "search": "I need to search {title} and find {topic}.",
    "lookup": "The opening sentences do not give {topic}, so I will look up {keyword}.",
    "answer": "{says} So the answer is {answer}.",
    "bridge": "I need to search {title} and find {topic}, then search that {noun} and find the {target}.",
    "next": "{says} Now I need to search {title} and find {topic}.",
    "compare": "I need to compare the {topic} of {a} and {b}. First I will search {title} and find {its} {topic}.",
    "compare_end": "{says} {win} {rel} {lose}, so {verdict}. So the answer is {answer}.",
    "numeric": "I need {parts}, then {operation}. First I will search {title}.",
    "calculate": "{says} So I need to calculate {expression}.",
    "arithmetic": "I need to calculate {expression}.",
    "result": "The result is {result}. So the answer is {result}.",
}


def _vocabulary() -> str:
    """Every fixed word the world prints, lower-cased: no name may hide inside it."""
    parts: list[Any] = [OPENINGS, [u.templates for units in UNITS.values() for u in units], list(FACTS.values()),
                        BRIDGES, COMPARISONS, NUMERIC, OPERATIONS, ARITHMETIC, THOUGHTS, GENRES, INDUSTRIES, NOUNS,
                        _BOOK_NOUNS, _BOOK_PATTERNS, _SEASONS, ["novelist entrepreneur engineer painter composer",
                        "eighteenth nineteenth twentieth small large mid-sized short long snow-capped she he"]]
    return repr(parts).lower()


_VOCABULARY = _vocabulary()
