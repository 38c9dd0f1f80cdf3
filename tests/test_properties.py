"""Property-based tests of the parser and the calculator: 10,000 generated cases each."""

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.tools.calculator import calculate
from workbench.errors import CalculatorError
from workbench.parsing import answer_stop, parse_answer, parse_step, react_stop
from workbench.tools import default_tools

TOOLS = default_tools()
MANY = settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like model output: headers, tool names, brackets, quotes, numbers and noise.
_pieces = st.sampled_from(["Thought", "Action", "Observation", "Question", "Answer", "Finish", "search", "lookup",
                           "calculate", "finish", "Search", ":", " 1:", "[", "]", "(", ")", "\"", "'", "\n", " ",
                           "Varnholt", "1312", "the", "**", "`", "：", "\t", "final answer", "google"])
model_text = st.lists(st.one_of(_pieces, st.text(max_size=8)), max_size=40).map("".join)


@MANY
@given(model_text)
def test_the_parser_never_raises_and_always_says_what_it_found(text):
    parsed = parse_step(text, TOOLS)
    assert parsed.error is not None or parsed.action is not None
    if parsed.action is not None and parsed.error is None:
        assert TOOLS.resolve(parsed.action.name) == parsed.action.name
    if parsed.error and parsed.error.startswith(("No action", "Unknown tool", "Could not read")):
        assert "search[...]" in parsed.error  # every such message lists the valid tools
    assert 0 <= parsed.thought_end <= len(text)
    cut = react_stop(text)
    assert cut is None or 0 <= cut <= len(text)
    parse_answer(text)
    cut = answer_stop(text)
    assert cut is None or 0 <= cut <= len(text)


_number = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"))
_op = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "^", " x ", "("," )", "(", ")", "9**9**9", "abs(", "__", "e"])
expression = st.lists(st.one_of(_number, _op, st.text(max_size=3)), max_size=30).map(" ".join)


@MANY
@given(expression)
def test_the_calculator_either_answers_or_refuses_quickly(text):
    t0 = time.perf_counter()
    try:
        value = calculate(text)
        assert isinstance(value, int | float)
    except CalculatorError as err:
        assert str(err)  # a message, never an empty refusal
    assert time.perf_counter() - t0 < 2.0  # bounded in time (generous for a loaded CI machine): no blow-up gets through


@settings(max_examples=2000, deadline=None)
@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.sampled_from(["+", "-", "*"]))
def test_the_calculator_agrees_with_python_on_what_it_accepts(a, b, op):
    expected = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert calculate(f"{a} {op} ({b})") == expected
