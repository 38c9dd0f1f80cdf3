"""Reading users' files: bytes within a size limit, UTF-8 text, and JSONL records with their line numbers.

One place for the checks every reader of a user's file needs (the file exists, is not too large, is
text and not binary, is UTF-8, is not empty; each JSONL line parses), each failure raised as the
caller's own error kind with a message that names the file, the line and the fix.

    >>> for lineno, record in jsonl_records(Path("tasks.jsonl"), error=DatasetError):   # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from .errors import InputError, WorkbenchError

__all__ = ["read_bytes", "decode_text", "read_text", "jsonl_records", "human_size"]

ErrorKind = type[WorkbenchError]


def human_size(n: int) -> str:
    """1234 -> "1.2 KiB"."""
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def _empty(path: Path, error: ErrorKind) -> WorkbenchError:
    return error(f"{path} is empty (or only whitespace), so it holds no documents. Add text to it or leave it out.")


def read_bytes(path: Path, max_bytes: int | None = None, *, error: ErrorKind = InputError,
               accepted: str = "") -> bytes:
    """The file's bytes; an error when it is missing, unreadable, over ``max_bytes`` or empty."""
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
    if not data.strip():
        raise _empty(path, error)
    return data


def decode_text(path: Path, data: bytes, *, error: ErrorKind = InputError) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or an error saying how to save it."""
    if b"\0" in data:
        raise error(f"{path} looks like a binary file (it contains NUL bytes), not text. Upload text saved as "
                    "UTF-8 (a text file saved as UTF-16 also contains NUL bytes: save it as UTF-8).")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise error(f"{path} is not valid UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}). "
                    "Save it as UTF-8 (in most editors: Save As, Encoding: UTF-8) and try again.") from err
    if not text.strip():
        raise _empty(path, error)
    return text


def read_text(path: Path, max_bytes: int | None = None, *, error: ErrorKind = InputError, accepted: str = "") -> str:
    """read_bytes, then decode_text."""
    return decode_text(path, read_bytes(path, max_bytes, error=error, accepted=accepted), error=error)


def jsonl_records(path: Path, text: str | None = None, *, error: ErrorKind = InputError) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of a JSONL file (or of ``text``, read from it)."""
    text = read_text(path, error=error) if text is None else text
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as err:
            raise error(f"{path}:{lineno}: not valid JSON ({err.msg}).") from err
