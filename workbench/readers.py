"""Reading users' files: bytes within a size limit, UTF-8 text, JSONL records with their line numbers, YAML, TOML.

One place for the checks every reader of a user's file needs (the file exists, is not too large, is
text and not binary, is UTF-8, is not empty; each JSONL line, the YAML or the TOML parses), each
failure raised as the caller's own error kind with a message that names the file, the line and the fix.

    >>> for lineno, record in jsonl_records(Path("tasks.jsonl"), error=DatasetError):   # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InputError, WorkbenchError

__all__ = ["read_bytes", "decode_text", "read_text", "jsonl_records", "yaml_data", "toml_data", "human_size"]

ErrorKind = type[WorkbenchError]


def human_size(n: int) -> str:
    """1234 -> "1.2 KiB"."""
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def _empty(path: Path, error: ErrorKind) -> WorkbenchError:
    return error(f"{path} is empty (or only whitespace), so it holds no documents. Add text to it or leave it out.")


def read_bytes(path: Path, max_bytes: int | None = None, *, error: ErrorKind = InputError,
               accepted: str = "", allow_empty: bool = False) -> bytes:
    """The file's bytes; an error when it is missing, unreadable, over ``max_bytes`` or (unless allowed) empty."""
    if not path.is_file():
        hint = f" ({accepted})" if accepted else ""
        raise error(f"No file at {path}. Pass the path of a file{hint}.")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise error(f"{path} is {human_size(size)}, over the limit of {human_size(max_bytes)} per file. Split it "
                        "into smaller files, or raise the limit (max_bytes).")
        data = path.read_bytes()
    except OSError as err:
        raise error(f"{path} could not be read ({err}). Check that it exists and that you may read it.") from err
    if not allow_empty and not data.strip():
        raise _empty(path, error)
    return data


def decode_text(path: Path, data: bytes, *, error: ErrorKind = InputError, allow_empty: bool = False) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or an error saying how to save it."""
    if b"\0" in data:
        raise error(f"{path} looks like a binary file (it contains NUL bytes), not text. Upload text saved as "
                    "UTF-8 (a text file saved as UTF-16 also contains NUL bytes: save it as UTF-8).")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise error(f"{path} is not valid UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}). "
                    "Save it as UTF-8 (in most editors: Save As, Encoding: UTF-8) and try again.") from err
    if not allow_empty and not text.strip():
        raise _empty(path, error)
    return text


def read_text(path: Path, max_bytes: int | None = None, *, error: ErrorKind = InputError, accepted: str = "",
              allow_empty: bool = False) -> str:
    """read_bytes, then decode_text. ``allow_empty``: an empty file is "" (the caller says what it lacks)."""
    data = read_bytes(path, max_bytes, error=error, accepted=accepted, allow_empty=allow_empty)
    return decode_text(path, data, error=error, allow_empty=allow_empty)


def jsonl_records(path: Path | str, text: str | None = None, *, error: ErrorKind = InputError,
                  where: Callable[[int], str] | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of a JSONL file (or of ``text``, read from it).

    ``where(lineno)`` names the place in an error (default ``path:lineno``), so each caller keeps its wording.
    """
    text = read_text(Path(path), error=error) if text is None else text
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as err:
            at = where(lineno) if where else f"{path}:{lineno}"
            raise error(f"{at}: not valid JSON ({err.msg} at column {err.colno}).") from err


def yaml_data(text: str, source: str, *, error: ErrorKind = InputError) -> Any:
    """The YAML document in ``text`` (safe loader: plain data only); an error names ``source`` and the line.

    >>> yaml_data("a: [1,", "p.yaml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputError: p.yaml: not valid YAML at line 1, column 7 (expected the node content, but found '<stream end>').
    """
    import yaml  # only the callers that read YAML pay for it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        detail = getattr(err, "problem", None) or str(err)
        raise error(f"{source}: not valid YAML{at} ({detail}).") from err


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def toml_data(text: str, source: str, *, error: ErrorKind = InputError) -> dict[str, Any]:
    """The TOML table in ``text``; an error names ``source`` and the line.

    >>> toml_data("steps = = 3", "ft.toml")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputError: ft.toml: not valid TOML at line 1, column 9 (Invalid value).
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        detail = str(err)
        m = _TOML_AT.search(detail)  # Python < 3.14 gives the place only in the message
        at = f" at line {m.group(1)}, column {m.group(2)}" if m else ""
        raise error(f"{source}: not valid TOML{at} ({detail[:m.start()] if m else detail}).") from err
