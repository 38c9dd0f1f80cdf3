"""The words of the richer demo world (demo2): articles written as encyclopedia prose.

An article has a lead paragraph and one or two more; the facts are dealt across them in a seeded
order, so an asked fact may sit in the opening or deep in the article, between sentences that state
nothing (fillers). Later sentences say "it", "the city" or a surname instead of the title; numbers
and dates come in several formats ("48,200" or "48 200"; "4 May 1873" or "May 4, 1873"); rivers
carry "the". Each fact sentence names the word a lookup finds it by (after the ``|``); that word may
also occur in other sentences, so a gold trajectory sometimes has to look up again.

    >>> import random
    >>> paragraphs, where = write_article("city", {"title": "Marl", "name": "Marl", "country": "Ostvar",
    ...                                   "founded": 1204}, random.Random(0))
    >>> paragraphs[0][0], where["founded"]
    ('Marl is a city in Ostvar.', (2, 'founding', '1204'))
"""

from __future__ import annotations

import random
import re
from typing import Any

__all__ = ["write_article", "number_forms", "MONTHS", "SUBJECTS", "FILLERS", "SENTENCES", "LEADS", "prose_words"]

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
# How later sentences name the entity: {S} at the start of a sentence, {P} its possessive.
SUBJECTS = {
    "country": (("It", "Its"), ("The country", "The country's"), ("{name}", "{name}'s")),
    "city": (("It", "Its"), ("The city", "The city's"), ("{name}", "{name}'s")),
    "river": (("It", "Its"), ("The river", "The river's"), ("The {name}", "The {name}'s")),
    "mountain": (("It", "Its"), ("The mountain", "The mountain's"), ("{name}", "{name}'s")),
    "person": (("{She}", "{Her}"), ("{surname}", "{surname}'s")),
    "book": (("It", "Its"), ("The novel", "The novel's"), ("{name}", "{name}'s")),
    "company": (("It", "Its"), ("The company", "The company's"), ("{name}", "{name}'s")),
}
# The first sentence: names the entity and its kind, sometimes a fact as well.
LEADS = {
    "country": ("{name}, officially the {alias}, is a {size}country.", "{name} is a {size}country; its official name "
                "is the {alias}.", "The {alias}, commonly called {name}, is a {size}country."),
    "city": ("{name} is a {size}city in {country}.", "{name} is a city and municipality of {country}.",
             "{name} is a {size}town in {country}, with the status of a city."),
    "river": ("The {name} (also the {name} River) is a river in {country}.", "The {name} is a {size}river of {country}.",
              "The {name} River, or simply the {name}, flows through {country}."),
    "mountain": ("{title} is a {size}mountain in {country}.", "{title}, known locally as {alias}, is a mountain of "
                 "{country}.", "{title} is a peak in {country}."),
    "person": ("{title} ({born_date} – {died_date}) was a {occupation}.", "{title} (born {born_date}) is a {occupation}.",
               "{title} was a {occupation} of the {century} century."),
    "book": ("{name} is a {genre} novel by {author}.", "{name} is a novel written by {author}.",
             "{name} is a {genre} novel."),
    "company": ("{name} is a {industry} company.", "{name} is a {industry} firm based in {hq}.",
                "{name} (sometimes {alias}) is a {industry} company."),
}
# kind -> the attribute a sentence states ("founded+founder": two at once) -> its templates, each
# "text|lookup keyword".
SENTENCES: dict[str, dict[str, tuple[str, ...]]] = {
    "country": {
        "capital": ("{P} capital and largest city is {capital}.|capital",
                    "The seat of government is in {capital}, the capital.|capital",
                    "{capital} has served as the capital since independence.|capital"),
        "population": ("{S} has a population of {population}.|population",
                       "The last census recorded {population} inhabitants.|inhabitants",
                       "About {population} people live in the country, according to its census.|census"),
        "area": ("{S} covers an area of {area} square kilometres.|area",
                 "{P} territory extends over {area} km².|territory",
                 "With an area of {area} square kilometres, it is among the region's states.|area"),
        "independence": ("{S} gained independence in {independence}.|independence",
                         "Independence was declared in {independence}, after a long struggle.|independence",
                         "{S} has been independent since {independence}.|independent"),
        "highest": ("{P} highest point is {highest}.|highest",
                    "The highest mountain of the country is {highest}.|highest"),
        "longest": ("{P} longest river is {longest}.|longest",
                    "The longest river to flow through the country is {longest}.|longest"),
    },
    "city": {
        "capital_of": ("{S} is the capital of {capital_of}.|capital",
                       "Since independence the city has been the capital of {capital_of}.|capital"),
        "river": ("{S} lies on {river}.|lies", "{S} stands on the banks of {river}.|banks",
                  "{river} flows through the city from north to south.|flows"),
        "founded": ("{S} was founded in {founded}.|founded", "The town was first recorded in {founded}, "
                    "the year of its founding.|founding", "Founded in {founded}, it grew around a market.|founded"),
        "population": ("{P} population is {population}.|population",
                       "At the last census it had {population} inhabitants.|inhabitants",
                       "The municipality counts {population} residents.|residents"),
        "elevation": ("{S} lies at an elevation of {elevation} metres.|elevation",
                      "The centre stands {elevation} m above sea level.|sea level",
                      "{P} elevation is {elevation} metres above sea level.|elevation"),
    },
    "river": {
        "length": ("{S} is {length} kilometres long.|long", "{P} total length is {length} km.|length",
                   "Over a course of {length} kilometres it drains much of the region.|course"),
        "source": ("{S} rises on the slopes of {source}.|rises", "{P} source lies on {source}.|source",
                   "From its source on {source}, it flows towards the sea.|source"),
        "discharge": ("{P} mean discharge is {discharge} cubic metres per second.|discharge",
                      "It carries on average {discharge} m³/s of water.|water"),
        "cities": ("Cities on its banks include {cities}.|banks", "{S} passes through {cities}.|passes"),
    },
    "mountain": {
        "height": ("{S} rises to a height of {height} metres.|height",
                   "{P} summit stands {height} m above sea level.|summit",
                   "At {height} metres, it dominates the range.|metres"),
        "climbed": ("{S} was first climbed in {climbed}.|climbed",
                    "The first ascent of the summit was made in {climbed}.|ascent",
                    "Climbers first reached its summit in {climbed}.|summit"),
        "rivers": ("{S} is the source of {rivers}.|source", "{P} slopes give rise to {rivers}.|slopes"),
    },
    "person": {
        "birth_year+birthplace": ("{S} was born on {born_date} in {birthplace}.|born",
                                  "Born in {birthplace} on {born_date}, {s} grew up there.|born"),
        "birth_year": ("{S} was born on {born_date}.|born", "{P} birth date is {born_date}.|birth"),
        "birthplace": ("{P} birthplace was {birthplace}.|birthplace", "{S} was a native of {birthplace}.|native"),
        "died": ("{S} died on {died_date}.|died", "{S} died in {died}, aged {age}.|died"),
        "books": ("{S} wrote {books}.|wrote", "Among {p} novels are {books}.|novels"),
        "companies": ("{S} founded {companies}.|founded", "In business {s} established {companies}.|established"),
        "bridges": ("{S} designed {bridges} bridges.|bridges", "Over a long career {s} built {bridges} bridges.|bridges"),
        "paintings": ("{S} completed {paintings} paintings.|paintings",
                      "{P} catalogue lists {paintings} paintings.|paintings"),
        "symphonies": ("{S} wrote {symphonies} symphonies.|symphonies",
                       "{P} output includes {symphonies} symphonies.|symphonies"),
    },
    "book": {
        "author": ("{S} was written by {author}.|written", "{author} wrote it in middle age.|wrote"),
        # These name the novel: two novels of one genre must not read the same (a yes/no question compares them).
        "genre": ("Critics describe {name} as a {genre} novel.|describe", "{name} is usually read as a {genre} "
                  "story.|read"),
        "published": ("{S} was first published in {published}.|published",
                      "The first edition appeared in {published}.|edition",
                      "Published in {published}, it was reprinted many times.|published"),
        "pages": ("The first edition runs to {pages} pages.|pages", "{S} has {pages} pages.|pages"),
        "setting": ("The story is set in {setting}.|set", "The novel takes place in {setting}.|takes place"),
    },
    "company": {
        "founded+founder": ("{S} was founded in {founded} by {founder}.|founded",
                            "{founder} founded it in {founded}.|founded"),
        "founded": ("{S} was established in {founded}.|established", "It dates from {founded}.|dates"),
        "founder": ("{P} founder was {founder}.|founder", "It was started by {founder}.|started"),
        "hq": ("{P} headquarters are in {hq}.|headquarters", "{S} is headquartered in {hq}.|headquartered"),
        "employees": ("{S} employs {employees} people.|employs", "{P} workforce numbers {employees}.|workforce",
                      "It has {employees} employees.|employees"),
    },
}
# Sentences that state no fact; some share a word with a fact sentence, so a lookup may meet them first. Each
# names its article's entity, so that two articles never show the same sentence (a lookup in each would repeat),
# and none states what demo-fever's NOT ENOUGH INFO claims need unstated (navigable, translated, film, exports).
FILLERS = {
    "country": ("{name} is divided into provinces.", "The economy of {name} rests on farming, trade and crafts.",
                "The population of {name} is concentrated in the river valleys.",
                "The highest courts of {name} sit in the old town."),
    "city": ("The old town of {name} is known for its covered markets.", "{name} has a university and a cathedral.",
             "The economy of {name} rests on trade and crafts.", "Many residents of {name} work in the nearby villages.",
             "A stone bridge links the two halves of {name}."),
    "river": ("Boats use the lower course of the {name}.", "The valley of the {name} is known for orchards.",
              "Several dams regulate the flow of water in the {name}.",
              "Floods of the {name} were common before the embankments were built."),
    "mountain": ("{name} is popular with hikers.", "The slopes of {name} are covered with pine forests.",
                 "A hut below the summit of {name} is open in summer.", "The range {name} belongs to is young."),
    "person": ("{surname} is remembered as a careful worker.", "The letters of {surname} were published after {p} death.",
               "{surname} travelled widely in {p} youth.", "Critics have praised the work of {surname}."),
    "book": ("{name} was well received by critics.", "{name} is still read in schools.",
             "A stage version of {name} was planned but never made.",
             "{name} follows a family over three generations."),
    "company": ("{name} is privately held.", "{name} sells most of its products abroad.",
                "The family of the founder of {name} still owns a large share.", "{name} grew quickly after the war."),
}


def prose_words() -> str:
    """Every fixed word these articles print, lower-cased (a name must not hide inside one)."""
    parts: list[Any] = [LEADS, SENTENCES, FILLERS, SUBJECTS, MONTHS, ["republic kingdom grand duchy federation",
                        "officially commonly called river peak firm sometimes"]]
    return repr(parts).lower()


def number_forms(value: int) -> list[str]:
    """Ways an article may write a whole number: 48200 -> ["48,200", "48 200", "48200"]; 1204 -> ["1204"]."""
    if value < 10000:
        return [str(value)]
    return [f"{value:,}", f"{value:,}".replace(",", " "), str(value)]


def _date(day: int, month: int, year: int, style: int) -> str:
    return f"{day} {MONTHS[month - 1]} {year}" if style == 0 else f"{MONTHS[month - 1]} {day}, {year}"


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def write_article(kind: str, values: dict[str, Any], rng: random.Random) -> tuple[list[list[str]], dict[str, Any]]:
    """Paragraphs of sentences, and where each stated fact is: {attr: (sentence index, keyword, shown value)}.

    ``values`` holds the prose-ready words: ``title``, ``name`` (the title without qualifier), linked entities
    already as prose names, numbers as ints; ``alias``, dates and pronouns where the kind has them.
    """
    number_style = rng.randrange(3) if kind != "country" else 0  # one style per article, as an editor would keep
    date_style = rng.randrange(2)
    words: dict[str, str] = {}
    shown: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            forms = number_forms(value)
            words[key] = forms[min(number_style, len(forms) - 1)] if key not in ("founded", "published") else str(value)
        elif isinstance(value, list):
            words[key] = _listed([str(v) for v in value])
        else:
            words[key] = str(value)
        shown[key] = words[key]
    if kind == "person":
        words["born_date"] = _date(*values["born_md"], values["birth_year"], date_style)
        if values.get("died"):
            words["died_date"] = _date(*values["died_md"], values["died"], date_style)
            words["age"] = str(values["died"] - values["birth_year"] - (values["died_md"] < values["born_md"]))
        words.update(She=values["pronoun"].capitalize(), Her="Her" if values["pronoun"] == "she" else "His",
                     s=values["pronoun"], p="her" if values["pronoun"] == "she" else "his",
                     surname=values["title"].split()[-1])
    size = values.get("size", "")
    words["size"] = f"{size} " if size else ""
    leads = [t for t in LEADS[kind] if _fits(t, words)]
    if kind == "person":  # the tense says whether the person is alive
        leads = [t for t in leads if (" was a " in t) == bool(values.get("died"))]
    lead = rng.choice(leads)
    where: dict[str, Any] = {a: (0, "", shown[a]) for a in values if "{" + a + "}" in lead and a in shown}
    if kind == "person" and "{born_date}" in lead:
        where["birth_year"] = (0, "", shown["birth_year"])
    if kind == "person" and "{died_date}" in lead:
        where["died"] = (0, "", shown["died"])
    units = [(attrs, templates) for attrs, templates in ((tuple(k.split("+")), t) for k, t in SENTENCES[kind].items())
             if all(a in shown for a in attrs) and not any(a in where for a in attrs)]
    rng.shuffle(units)
    taken: set[str] = set(where)
    body: list[tuple[str, tuple[str, ...], str]] = []  # (sentence, attrs, keyword)
    for attrs, templates in units:
        if taken & set(attrs):
            continue
        taken |= set(attrs)
        options = [t for t in templates if _fits(t.split("|")[0], {**words, "S": "x", "P": "x"})]
        text, keyword = rng.choice(options).split("|")
        body.append((text, attrs, keyword))
    fillers = rng.sample(FILLERS[kind], k=min(len(FILLERS[kind]), rng.randint(1, 3)))
    body += [(f, (), "") for f in fillers]
    rng.shuffle(body)
    sentences = [_fill(lead, words, 0, kind, rng)]
    for text, attrs, keyword in body:
        for a in attrs:
            where[a] = (len(sentences), keyword, shown[a])
        sentences.append(_fill(text, words, len(sentences), kind, rng))
    cut = sorted(rng.sample(range(2, len(sentences)), k=min(2, max(0, len(sentences) - 3)))) if len(sentences) > 3 \
        else []
    bounds = [0, *cut, len(sentences)]
    paragraphs = [sentences[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    return paragraphs, where


def _fits(template: str, words: dict[str, str]) -> bool:
    return all(name in words and (words[name] or name == "size") for name in re.findall(r"\{(\w+)\}", template))


def _fill(template: str, words: dict[str, str], index: int, kind: str, rng: random.Random) -> str:
    subject, possessive = rng.choice(SUBJECTS[kind]) if index > 1 else SUBJECTS[kind][0]
    filled = {**words, "S": subject.format(**words), "P": possessive.format(**words)}
    text = re.sub(r"\{(\w+)\}", lambda m: filled.get(m.group(1), m.group(0)), template)
    text = re.sub(r"\b([Aa]) (?=[aeio]|u(?!ni))", r"\1n ", text)  # "an orchard", "a university"
    text = re.sub(r"(?<=s)'s\b", "'", text)  # "Troske Motors' workforce"
    return text[0].upper() + text[1:]
