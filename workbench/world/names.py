"""The demo world's name maker: pronounceable invented names, unique, unrelated by substring, and clear of
every word the world's templates print (so a name never hides inside a sentence a model reads).
"""

from __future__ import annotations

import random
import re
from typing import Callable

from ..errors import WorldError
from .text import _BOOK_NOUNS, _BOOK_PATTERNS, _SEASONS, _VOCABULARY, KEYWORDS

__all__ = ["NameMaker"]

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "r", "s", "sk", "st", "t",
           "th", "tr", "v", "z", "")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou")
_VOWEL_PAIRS = ("ai", "ou", "ia", "ea", "io", "ei", "oa", "ie")
_MID_CODAS = ("", "", "", "n", "r", "l", "s")
_END_CODAS = ("", "", "n", "r", "l", "s", "th", "nd", "rn", "sk", "lt", "m", "rk")
_ENDINGS = {
    "country": ("ia", "ora", "esh", "mark", "avia", "und", "ost"),
    "city": ("holt", "mere", "wyn", "dun", "var", "esk", "ith", "ard", "", "", ""),
    "river": ("e", "a", "ine", "ul", "", ""),
    "mountain": ("", "", "ak", "orn", "un"),
    "she": ("a", "is", "e", "el", "ine"),
    "he": ("o", "en", "an", "in", "ek"),
    "last": ("", "", "er", "ov", "ane", "ik", "sen", "ell"),
    "place": ("", "", "e", "a", "is"),
}
# Words a syllable generator could stumble on that name real, well-known places, people or brands.
_BLOCKED = frozenset("""
paris london berlin rome milan madrid lisbon vienna prague oslo sofia riga tallinn dublin bern turin genoa
naples venice florence dresden bremen munich hamburg zurich geneva basel lyon nice tours nantes lille brest
malaga toledo porto braga verona parma siena pisa bologna trieste malmo bergen tromso narvik gdansk krakow
lodz brno graz linz salzburg kiev minsk moscow tokyo kyoto osaka delhi cairo lima quito bogota havana santos
nile rhine danube volga seine thames elbe oder tiber indus ganges amazon congo niger loire rhone douro tagus
everest denali elbrus etna vesuvius olympus kilimanjaro matterhorn eiger blanc ararat sinai tabor
tolstoy dickens homer dante bach mozart verdi monet manet goya tesla edison ford darwin newton plato kant hegel
marx lenin stalin nero caesar brutus venus mars luna sparta troy athens crete malta cuba peru chile china
india iran iraq mali chad oman togo laos nepal tonga samoa kenya ghana sudan yemen syria japan korea spain
italy greece france norway sweden poland russia brazil canada mexico texas maine nevada dakota sony nokia
volvo saab fiat audi lada tata kodak zara ikea siemens bosch philips nestle lego skoda opel bayer merck
dora anna maria elena sara laura nora lena vera olga irene helen karen susan linda tina rosa ella mona
boris ivan igor oleg pavel anton hugo otto bruno marco mario paolo pedro diego carlos felix oscar victor
morgan taylor harris davis miller wilson turner parker baker carter mason hunter fisher walker
""".split())


class NameMaker:
    """Invents pronounceable names that are unique, unrelated by substring, and clear of every template word."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: list[str] = []  # lower-case titles handed out so far

    def word(self, syllables: int, ending: str = "") -> str:
        """One capitalised invented word of ``syllables`` syllables plus an ending."""
        for _ in range(10000):
            parts = []
            for i in range(syllables):
                last = i == syllables - 1
                codas = _END_CODAS if last and not ending else _MID_CODAS
                parts.append(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(codas))
            text = ("".join(parts) + ending).lower()
            simple = text.replace("th", "T").replace("sh", "S").replace("ck", "K")
            pairs = re.findall(r"(?=([aeiouy]{2}))", simple)
            if re.search(r"[^aeiouy]{3,}|[aeiouy]{3,}|(.)\1\1", simple) or not 4 <= len(text) <= 11 or any(
                    p not in _VOWEL_PAIRS for p in pairs):
                continue  # unpronounceable or too long: draw again
            return text.capitalize()
        raise WorldError(f"No pronounceable word of {syllables} syllable(s) ends in {ending!r}; change the ending.")

    def ending(self, group: str) -> str:
        return self.rng.choice(_ENDINGS[group])

    def acceptable(self, title: str) -> bool:
        low = title.lower()
        if (" " not in low and len(low) < 5) or low in _VOCABULARY:
            return False
        if any(k in low for k in KEYWORDS) or any(w in _BLOCKED for w in low.split()):
            return False
        return not any(low in other or other in low for other in self.taken)

    def take(self, make: Callable[[], str], tries: int = 2000) -> str:
        """Draw names from ``make`` until one is acceptable, and reserve it."""
        for _ in range(tries):
            title = make()
            if self.acceptable(title):
                self.taken.append(title.lower())
                return title
        raise WorldError(f"Could not invent a new name after {tries} tries; lower the entity counts.")

    # One maker per kind of entity; each returns a reserved title.
    def country(self) -> str:
        return self.take(lambda: self.word(self.rng.choice((1, 2)), self.ending("country")))

    def city(self) -> str:
        return self.take(lambda: self.word(self.rng.choice((1, 2, 2)), self.ending("city")))

    def river(self) -> str:
        return self.take(lambda: self.word(2, self.ending("river")))

    def mountain(self) -> str:
        return self.take(lambda: "Mount " + self.word(2, self.ending("mountain")))

    def person(self, pronoun: str) -> str:
        first = lambda: self.word(self.rng.choice((1, 1, 2)), self.ending(pronoun))  # noqa: E731
        return self.take(lambda: f"{first()} {self.word(2, self.ending('last'))}")

    def book(self) -> str:
        def make() -> str:
            pattern = self.rng.choice(_BOOK_PATTERNS)
            place = self.word(self.rng.choice((2, 3)), self.ending("place"))
            return pattern.format(noun=self.rng.choice(_BOOK_NOUNS), place=place, season=self.rng.choice(_SEASONS))

        return self.take(make)

    def company(self, suffix: str) -> str:
        return self.take(lambda: f"{self.word(2)} {suffix}")


# ---------------------------------------------------------------- articles
