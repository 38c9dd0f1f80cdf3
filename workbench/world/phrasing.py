"""How the richer demo world (demo2) asks and reasons: several phrasings per question and per reasoning move.

A task's seed picks one phrasing of its question and one of each thought it writes, so a model
trained on the gold trajectories learns the move (search the entity, look up the fact, look up
again, tell namesakes apart, compare, answer yes or no), not one sentence.

    >>> import random
    >>> say("lookup", random.Random(0), topic="its population", keyword="census").endswith("census.")
    True
"""

from __future__ import annotations

import random
import re

__all__ = ["QUESTIONS", "BRIDGE_QUESTIONS", "MORE_QUESTIONS", "BOTH_QUESTIONS", "THOUGHTS2", "say"]

# (kind, attribute) -> question phrasings; {e} names the entity.
QUESTIONS = {
    ("city", "country"): ("In which country is {e}?", "{e} is a city in which country?", "Which country is {e} in?"),
    ("city", "river"): ("On which river does {e} lie?", "Which river flows through {e}?", "{e} lies on what river?"),
    ("city", "founded"): ("When was {e} founded?", "In what year was {e} founded?", "What is the founding year of {e}?"),
    ("city", "population"): ("What is the population of {e}?", "How many people live in {e}?",
                             "How many inhabitants does {e} have?"),
    ("city", "elevation"): ("At what elevation does {e} lie, in metres?", "How many metres above sea level is {e}?"),
    ("river", "country"): ("In which country does {e} flow?", "Which country does {e} flow through?"),
    ("river", "length"): ("How long is {e}, in kilometres?", "What is the length of {e} in kilometres?",
                          "How many kilometres long is {e}?"),
    ("river", "source"): ("On which mountain does {e} have its source?", "Where does {e} rise?",
                          "Which mountain is the source of {e}?"),
    ("river", "discharge"): ("What is the mean discharge of {e}, in cubic metres per second?",
                             "How much water does {e} carry on average, in cubic metres per second?"),
    ("mountain", "country"): ("In which country does {e} stand?", "Which country is {e} in?"),
    ("mountain", "height"): ("How high is {e}, in metres?", "What is the height of {e} in metres?",
                             "How many metres high is {e}?"),
    ("mountain", "climbed"): ("In which year was {e} first climbed?", "When was the first ascent of {e}?"),
    ("person", "occupation"): ("What was the occupation of {e}?", "What did {e} do for a living?"),
    ("person", "birth_year"): ("In which year was {e} born?", "When was {e} born?", "What is the birth year of {e}?"),
    ("person", "birthplace"): ("In which city was {e} born?", "Where was {e} born?", "What is the birthplace of {e}?"),
    ("person", "died"): ("In which year did {e} die?", "When did {e} die?"),
    ("person", "bridges"): ("How many bridges did {e} design?", "What number of bridges did {e} design?"),
    ("person", "paintings"): ("How many paintings did {e} complete?", "How many paintings are by {e}?"),
    ("person", "symphonies"): ("How many symphonies did {e} write?", "How many symphonies did {e} compose?"),
    ("book", "author"): ("Who wrote {e}?", "Who is the author of {e}?", "{e} was written by whom?"),
    ("book", "genre"): ("What kind of novel is {e}?", "What genre is {e}?"),
    ("book", "published"): ("In which year was {e} published?", "When was {e} first published?"),
    ("book", "pages"): ("How many pages does {e} have?", "How long is {e}, in pages?"),
    ("book", "setting"): ("In which city is {e} set?", "Where does {e} take place?"),
    ("company", "founder"): ("Who founded {e}?", "Who is the founder of {e}?", "{e} was started by whom?"),
    ("company", "founded"): ("In which year was {e} founded?", "When was {e} established?"),
    ("company", "hq"): ("In which city does {e} have its headquarters?", "Where is {e} headquartered?"),
    ("company", "employees"): ("How many people does {e} employ?", "How many employees does {e} have?"),
    ("country", "capital"): ("What is the capital of {e}?", "Which city is the capital of {e}?"),
    ("country", "population"): ("What is the population of {e}?", "How many people live in {e}?"),
    ("country", "area"): ("What is the area of {e}, in square kilometres?", "How large is {e} in square kilometres?"),
    ("country", "independence"): ("In which year did {e} gain independence?", "When did {e} become independent?"),
    ("country", "highest"): ("What is the highest mountain of {e}?", "Which is the highest peak in {e}?"),
    ("country", "longest"): ("What is the longest river of {e}?", "Which river is the longest in {e}?"),
}
# (kind A, link, attribute of B) -> more phrasings of the bridge question (the first is world version 1's).
BRIDGE_QUESTIONS = {
    ("book", "author", "birthplace"): ("Where was the author of {e} born?",),
    ("book", "author", "birth_year"): ("When was the writer of {e} born?",),
    ("book", "author", "died"): ("When did the author of {e} die?",),
    ("book", "setting", "country"): ("The novel {e} is set in a city of which country?",),
    ("book", "setting", "population"): ("How many people live in the city where {e} takes place?",),
    ("company", "founder", "birth_year"): ("When was the person who founded {e} born?",),
    ("company", "founder", "birthplace"): ("Where was the founder of {e} born?",),
    ("company", "hq", "country"): ("{e} is headquartered in which country?",),
    ("company", "hq", "founded"): ("In what year was the city where {e} is headquartered founded?",),
    ("city", "river", "length"): ("What is the length, in kilometres, of the river that flows through {e}?",),
    ("city", "river", "source"): ("Where does the river that flows through {e} rise?",),
    ("river", "source", "height"): ("What is the height in metres of the mountain where {e} rises?",),
    ("country", "capital", "population"): ("How many people live in the capital of {e}?",),
    ("country", "capital", "founded"): ("In what year was the capital of {e} founded?",),
    ("country", "highest", "height"): ("What is the height, in metres, of the highest peak in {e}?",),
    ("country", "highest", "climbed"): ("When was the highest mountain of {e} first climbed?",),
    ("country", "longest", "length"): ("What is the length in kilometres of the longest river of {e}?",),
    ("person", "birthplace", "country"): ("{e} was born in which country?",),
}
# (kind, attribute) -> a yes/no question: is {a} the winner of the comparison against {b}?
MORE_QUESTIONS = {
    ("city", "population"): "Does {a} have a larger population than {b}?",
    ("city", "founded"): "Was {a} founded before {b}?",
    ("city", "elevation"): "Does {a} lie higher than {b}?",
    ("river", "length"): "Is {a} longer than {b}?",
    ("river", "discharge"): "Does {a} carry more water than {b}?",
    ("mountain", "height"): "Is {a} higher than {b}?",
    ("mountain", "climbed"): "Was {a} climbed before {b}?",
    ("person", "birth_year"): "Was {a} born before {b}?",
    ("person", "paintings"): "Did {a} complete more paintings than {b}?",
    ("person", "symphonies"): "Did {a} write more symphonies than {b}?",
    ("person", "bridges"): "Did {a} design more bridges than {b}?",
    ("book", "published"): "Was {a} published before {b}?",
    ("book", "pages"): "Does {a} have more pages than {b}?",
    ("company", "founded"): "Was {a} founded before {b}?",
    ("company", "employees"): "Does {a} employ more people than {b}?",
    ("country", "area"): "Is {a} larger than {b}?",
    ("country", "population"): "Does {a} have more people than {b}?",
    ("country", "independence"): "Did {a} gain independence before {b}?",
}
# (kind, attribute) -> "are both" questions; {v} is the value asked about.
BOTH_QUESTIONS = {
    ("city", "country"): ("Are both {a} and {b} in {v}?", "Are {a} and {b} both cities of {v}?"),
    ("river", "country"): ("Do both {a} and {b} flow through {v}?",),
    ("mountain", "country"): ("Are both {a} and {b} in {v}?", "Do {a} and {b} both stand in {v}?"),
    ("person", "occupation"): ("Were both {a} and {b} {v}s?", "Are {a} and {b} both known as {v}s?"),
    ("book", "genre"): ("Are both {a} and {b} {v} novels?",),
    ("company", "industry"): ("Are both {a} and {b} {v} companies?",),
}
THOUGHTS2 = {
    "search": ("I need to search {name} and find {topic}.", "I should look up {name} to learn {topic}.",
               "To answer, I will search {name} for {topic}.", "First I search {name}; its article should give {topic}."),
    "namesake": ("The search opened {opened}, not the {noun} I need. I will search {title}.",
                 "This is {opened}. The question is about the {noun}, so I search {title}.",
                 "{opened} is the wrong article; the {noun} is {title}."),
    "lookup": ("The opening does not give {topic}, so I will look up {keyword}.",
               "{Topic} is not in the first sentences. Let me look up {keyword}.",
               "I still need {topic}; looking up {keyword} should find it."),
    "again": ("That sentence does not give {topic}. I will look up {keyword} again.",
              "Not this one; the next result for {keyword} may give {topic}.",
              "This does not state {topic}, so I look up {keyword} once more."),
    "says": ("The {topic} of {name} is {value}.", "{Name}'s {topic} is {value}.", "So the {topic} of {name} is {value}."),
    "answer": ("{says} So the answer is {answer}.", "{says} The answer is {answer}.",
               "{says} That answers the question: {answer}."),
    "bridge": ("I need {topic} of {name}, then the {target} of that {noun}. First I search {name}.",
               "First I find {topic} of {name}; then I search that {noun} for its {target}.",
               "The question needs two hops: {topic} of {name}, then the {target} of that {noun}."),
    "next": ("{says} Now I need to search {name} and find {topic}.", "{says} Next I search {name} for {topic}.",
             "{says} Then I look at {name} to find {topic}."),
    "compare": ("I need to compare the {topic} of {a} and {b}. First I search {a}.",
                "I have to find the {topic} of both {a} and {b}, starting with {a}.",
                "To compare {a} and {b}, I need each one's {topic}. I begin with {a}."),
    "compare_end": ("{says} {win} {rel} {lose}, so {verdict}. So the answer is {answer}.",
                    "{says} Since {win} {rel} {lose}, {verdict}. The answer is {answer}."),
    "both": ("I need to check whether {a} and {b} are both {what}. First I search {a}.",
             "I will check {a} and then {b}, to see if both are {what}."),
    "yes_no_end": ("{says} So the answer is {answer}.", "{says} Therefore the answer is {answer}.",
                   "{says} So, {answer}."),
    "numeric": ("I need {parts}, then {operation}. First I will search {name}.",
                "This needs {parts}, and then {operation}. I start with {name}."),
    "calculate": ("{says} So I need to calculate {expression}.", "{says} Now I calculate {expression}."),
    "arithmetic": ("I need to calculate {expression}.", "This is arithmetic: {expression}.",
                   "I will compute {expression}."),
    "result": ("The result is {result}. So the answer is {result}.", "{result} is the result, so the answer is {result}."),
}


def say(move: str, rng: random.Random, **words: str) -> str:
    """One phrasing of a reasoning move, chosen by ``rng``, filled with ``words``."""
    text = rng.choice(THOUGHTS2[move])
    words = {**words, **{k[0].upper() + k[1:]: v[:1].upper() + v[1:] for k, v in words.items() if v}}
    text = re.sub(r"(?<=s)'s\b", "'", text.format(**words))  # "Marl Brewing's", "Troske Motors'"
    return text[0].upper() + text[1:]
