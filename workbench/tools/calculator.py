"""Arithmetic for the ``calculate`` tool: a whitelist evaluator over Python's syntax tree.

Only numbers, ``+ - * / // % **``, unary signs and parentheses are accepted; names, calls,
attributes, comparisons and everything else are refused before anything is computed. Length,
nesting depth, exponents and result sizes are bounded, so no input can hang or exhaust memory.
Nothing here calls ``eval`` or ``exec``.

    >>> calculate("(1987 - 1954) * 2")
    66
    >>> format_number(calculate("10 / 4"))
    '2.5'
"""

from __future__ import annotations

import ast
import math
import operator
import re

from ..errors import CalculatorError

__all__ = ["calculate", "format_number", "MAX_LENGTH", "MAX_DEPTH", "MAX_EXPONENT", "MAX_DIGITS"]

MAX_LENGTH = 300  # characters in an expression
MAX_DEPTH = 40  # nesting depth of the syntax tree
MAX_EXPONENT = 1000  # |exponent| of a power
MAX_DIGITS = 300  # decimal digits in any intermediate or final integer
_MAX_FLOAT = 1e300

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")


def _normalise(expression: str) -> str:
    """Accept the ways people write arithmetic: 1,234; x or × for times; ÷; ^ for powers."""
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), expression)
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    text = re.sub(r"(?<=[\d)\s])[xX](?=[\s\d(])", "*", text)
    return text.strip().strip("=").strip()


def _check_size(value: int | float) -> int | float:
    if isinstance(value, int):
        if value.bit_length() > MAX_DIGITS * 3.33:  # 3.33 bits per decimal digit
            raise CalculatorError(f"The result has more than {MAX_DIGITS} digits; use smaller numbers.")
    elif not math.isfinite(value) or abs(value) > _MAX_FLOAT:
        raise CalculatorError("The result is too large (or not a finite number); use smaller numbers.")
    return value


def _pow(base: int | float, exp: int | float) -> int | float:
    if abs(exp) > MAX_EXPONENT:
        raise CalculatorError(f"Exponent {exp} is too large; the largest allowed is {MAX_EXPONENT}.")
    if base not in (0, 1, -1) and exp > 0:
        digits = exp * math.log10(abs(base)) if base else 0
        if digits > MAX_DIGITS:
            raise CalculatorError(f"{base} ** {exp} would have about {int(digits)} digits; the limit is {MAX_DIGITS}.")
    if base == 0 and exp < 0:
        raise CalculatorError("Zero cannot be raised to a negative power.")
    result = operator.pow(base, exp)
    if isinstance(result, complex):
        raise CalculatorError("A negative number raised to a fractional power has no real value.")
    return result


def _eval(node: ast.AST, depth: int) -> int | float:
    if depth > MAX_DEPTH:
        raise CalculatorError(f"The expression is nested more than {MAX_DEPTH} levels deep; simplify it.")
    if isinstance(node, ast.Expression):
        return _eval(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check_size(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, depth + 1))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _eval(node.left, depth + 1)
        right = _eval(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _check_size(_pow(left, right))
        if isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_DIGITS * 3.33 + 2:
                raise CalculatorError(f"The product would have more than {MAX_DIGITS} digits; use smaller numbers.")
        try:
            return _check_size(_BINOPS[type(node.op)](left, right))
        except ZeroDivisionError as err:
            raise CalculatorError("Division by zero.") from err
        except OverflowError as err:
            raise CalculatorError("The result is too large; use smaller numbers.") from err
    what = type(node).__name__
    if isinstance(node, ast.Name):
        what = f"the name {node.id!r}"
    elif isinstance(node, ast.Call):
        what = "a function call"
    elif isinstance(node, ast.Constant):
        what = f"the value {node.value!r}"
    raise CalculatorError(
        f"calculate accepts only numbers, + - * / // % ** and parentheses, not {what}. Example: calculate[(12 + 3) * 4]"
    )


def calculate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely, or raise CalculatorError saying what to change."""
    if not isinstance(expression, str):
        raise CalculatorError("calculate needs the expression as text, e.g. calculate[2 * (3 + 4)].")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(
            f"The expression has {len(expression):,} characters; the limit is {MAX_LENGTH}. Split it into smaller steps."
        )
    text = _normalise(expression)
    if not text:
        raise CalculatorError("The expression is empty. Example: calculate[2 * (3 + 4)]")
    if text.count("(") > MAX_DEPTH or text.count("[") or text.count("{"):
        if text.count("(") > MAX_DEPTH:
            raise CalculatorError(f"The expression has more than {MAX_DEPTH} parentheses; simplify it.")
        raise CalculatorError("Use round parentheses ( ) for grouping, not [ ] or { }.")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as err:
        raise CalculatorError(
            f"{expression.strip()!r} is not an arithmetic expression. Example: calculate[(1987 - 1954) * 2]"
        ) from err
    try:
        return _eval(tree, 0)
    except RecursionError as err:
        raise CalculatorError("The expression is nested too deeply; simplify it.") from err


def format_number(value: int | float) -> str:
    """Integers as they are; floats to 6 significant decimals without trailing zeros (2.0 -> '2')."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.6g}" if abs(value) >= 1e15 or abs(value) < 1e-4 else f"{value:.6f}".rstrip("0").rstrip(".")
    return text
