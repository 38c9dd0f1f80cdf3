"""Users' own knowledge: a file (.txt, .md, .pdf, .jsonl) or a folder of them, read into a Corpus.

    >>> corpus = load_corpus_path("my_notes/")                            # doctest: +SKIP
    >>> docs = read_documents("guide.md", split_headings=True)            # doctest: +SKIP

Every reader turns bad input into a CorpusError that names the file and the fix: an empty or
binary file, text that is not UTF-8, a JSONL line without ``text``, a scanned PDF, duplicate
titles, a file over ``max_bytes``. Loading is all or nothing: one bad file fails the whole call.

Text is kept as paragraphs (blank-line separated, whitespace inside each collapsed) and sentences
are split per paragraph, so that no sentence spans a paragraph break (``split_sentences`` alone
would run a heading into the paragraph under it).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .corpus import Corpus, Document, jsonl_documents, normalize_title, split_sentences
from .errors import CorpusError
from .readers import decode_text, read_bytes

__all__ = ["read_documents", "load_corpus_path", "read_jsonl", "paragraphs", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".jsonl")
_ACCEPTED = ", ".join(SUPPORTED_SUFFIXES)


@dataclass
class _Read:
    """A document as read, with where it came from (for messages) and, for a title this module made up
    by splitting Markdown at headings, the qualifier that disambiguates it ("Install (Guide)")."""

    doc: Document
    origin: str
    qualifier: str | None = None  # None: the title was given by the user and must be unique as it is


# ---------------------------------------------------------------- public entry points


def read_documents(path: str | Path, *, split_headings: bool = False, max_bytes: int | None = None) -> list[Document]:
    """The documents of ONE file, by its suffix (see ``SUPPORTED_SUFFIXES``).

    ``.jsonl``: one ``{title, text}`` object per line. ``.txt``: one article titled by the file name.
    ``.md`` / ``.markdown``: one article titled by its first ``# `` heading (else the file name), or
    with ``split_headings`` one article per level 1-2 heading. ``.pdf``: one article, titled by the
    PDF's title metadata when it is sensible, else by the file name (needs ``pypdf``).
    """
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path} is a folder; read_documents reads one file. Use load_corpus_path({str(path)!r}) "
                          "to read every file in a folder.")
    return _unique(_read(path, path.name, split_headings, max_bytes), str(path))


def load_corpus_path(path: str | Path, name: str | None = None, *, split_headings: bool = False,
                     max_bytes: int | None = None) -> Corpus:
    """A Corpus from a file or a folder (every supported file under it, sorted; hidden ones skipped).

    The corpus is named ``name``, else after the folder or the file's stem. ``max_bytes`` limits
    each file. Any bad file fails the whole call with a message naming that file.
    """
    root = Path(path)
    if root.is_dir():
        files = _supported_files(root)
        if not files:
            raise CorpusError(f"The folder {root} holds no file that can be read as documents. Accepted: {_ACCEPTED} "
                              "(hidden files and folders are skipped).")
        reads = [r for f in files for r in _read(f, f.relative_to(root).as_posix(), split_headings, max_bytes)]
        default = root.resolve().name
    elif root.exists():
        reads, default = _read(root, root.name, split_headings, max_bytes), root.stem
    else:
        raise CorpusError(f"No file or folder at {root}. Pass a file ({_ACCEPTED}) or a folder of them.")
    name = name or default or "corpus"
    return Corpus(_unique(reads, f"corpus {name!r}"), name=name)


def read_jsonl(path: str | Path, max_bytes: int | None = None) -> list[Document]:
    """The documents of a JSONL file, each line checked (``Corpus.from_jsonl`` reads through this)."""
    path = Path(path)
    return [doc for _, doc in jsonl_documents(Path(path), max_bytes=max_bytes)]


def paragraphs(text: str) -> list[str]:
    """The paragraphs of plain text: blocks between blank lines, whitespace inside each collapsed to one space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


# ---------------------------------------------------------------- one file


def _read(path: Path, shown: str, split_headings: bool, max_bytes: int | None) -> list[_Read]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise CorpusError(f"{path}: files of type {suffix or '(no suffix)'!r} cannot be read as documents. "
                          f"Accepted: {_ACCEPTED}.")
    data = read_bytes(path, max_bytes, error=CorpusError, accepted=_ACCEPTED)
    if suffix == ".pdf":
        return [_Read(_pdf(path, data, shown), shown)]
    text = decode_text(path, data, error=CorpusError)
    if suffix == ".jsonl":
        return [_Read(doc, f"{shown} line {n}") for n, doc in jsonl_documents(path, text)]
    if suffix == ".txt":
        return [_Read(_prose(path, _title_from_name(path), paragraphs(text), shown), shown)]
    return _markdown(path, text, shown, split_headings)



def _title_from_name(path: Path) -> str:
    """"river_drume-notes.txt" -> "river drume notes" (underscores and dashes become spaces)."""
    return " ".join(re.sub(r"[_-]+", " ", path.stem).split()) or path.name


def _prose(path: Path, title: str, paras: list[str], shown: str) -> Document:
    """A Document from paragraphs, its sentences split paragraph by paragraph."""
    if not paras:
        raise CorpusError(f"{path} holds no text to search (only headings or markup). Add text, or leave it out.")
    sentences = [s for p in paras for s in split_sentences(p)]
    return Document(title, "\n\n".join(paras), sentences=sentences, meta={"source": shown})


# ---------------------------------------------------------------- Markdown

_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}(?:[-*_=|:+]\s*){3,}$")  # horizontal rules and table separator rows
_REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S")
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+")
_URL = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)"  # (url "title"), one level of parentheses inside
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]" + _URL), r"\1"),  # image -> its alt text
    (re.compile(r"\[([^\]]+)\]" + _URL), r"\1"),  # [text](url) -> text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref] -> text
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # <https://...> -> the address
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # inline HTML tags
    (re.compile(r"`+([^`]+?)`+"), r"\1"),  # inline code
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *emphasis*
    (re.compile(r"(?<![\w])_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _emphasis_ (not snake_case)
    (re.compile(r"~~(.+?)~~"), r"\1"),  # strikethrough
]


def _inline(text: str) -> str:
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return text.strip()


def _markdown(path: Path, text: str, shown: str, split_headings: bool) -> list[_Read]:
    """One article per file, or per level 1-2 heading; markup stripped, code kept as plain text."""
    text = _COMMENT.sub("", _FRONT_MATTER.sub("", text.replace("\r\n", "\n").replace("\r", "\n"), count=1))
    sections: list[tuple[str | None, list[str]]] = [(None, [])]  # (heading, lines); None: before any heading
    file_title: str | None = None
    fence, plain = "", False  # plain: the line before was paragraph text (which "===" / "---" would make a heading)
    for raw in text.split("\n"):
        lines, was_plain, plain = sections[-1][1], plain, False
        if fence:  # inside a code block: its lines stay as they are
            if raw.strip().startswith(fence):
                fence = ""
                lines.append("")
            else:
                lines.append(raw)
            continue
        if m := _FENCE.match(raw):
            fence = m.group(1)
            lines.append("")
            continue
        level, heading = 0, ""
        if m := _ATX.match(raw):
            level, heading = len(m.group(1)), _inline(m.group(2) or "")
        elif (m := _SETEXT.match(raw)) and was_plain:
            level, heading = (1 if m.group(1)[0] == "=" else 2), lines.pop()
        if level:
            is_title = level == 1 and file_title is None and bool(heading)
            file_title = heading if is_title else file_title
            if split_headings and level <= 2 and heading:
                sections.append((heading, []))
            elif not is_title:  # the title heading names the article; other headings stay as paragraphs
                lines += ["", heading, ""]
            continue
        if _REFDEF.match(raw) or _RULE.match(raw):
            lines.append("")
            continue
        line = _QUOTE.sub("", raw)
        if m := _BULLET.match(line):  # each list item is a paragraph of its own
            lines += ["", _inline(line[m.end():])]
        elif line.lstrip().startswith("|"):  # a table row: its cells, as one paragraph
            lines += ["", " ".join(_inline(c) for c in line.strip().strip("|").split("|")), ""]
        else:
            lines.append(_inline(line))
            plain = bool(line.strip())
    title = file_title or _title_from_name(path)
    if not split_headings:
        return [_Read(_prose(path, title, paragraphs("\n".join(sections[0][1])), shown), shown)]
    reads = []
    for heading, lines in sections:
        paras = paragraphs("\n".join(lines))
        if paras:
            name = heading or title
            qualifier = title if normalize_title(name) != normalize_title(title) else path.name
            doc = _prose(path, name, paras, shown)
            doc.meta["section"] = name
            reads.append(_Read(doc, f"{shown}, section {name!r}", qualifier))
    if not reads:
        raise CorpusError(f"{path} holds no text to search (only headings or markup). Add text, or leave it out.")
    return reads


# ---------------------------------------------------------------- PDF

_JUNK_TITLE = re.compile(r"^(untitled.*|title|document\d*|slide \d+|microsoft (word|powerpoint).*|.*\.(docx?|pdf|tex|odt|"
                         r"rtf|pptx?|indd|dvi|ps))$", re.I)


def _pdf(path: Path, data: bytes, shown: str) -> Document:
    """The text layer of a PDF as one article (a scanned PDF has none and is refused)."""
    from .deps import require

    pypdf = require("pypdf", "Reading PDF files")
    encrypted = (f"{path} is encrypted (password-protected), so its text cannot be read. Save an unprotected copy "
                 "(e.g. `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`) or upload its text as .txt or .md.")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs are "encrypted" with an empty password
            raise CorpusError(encrypted)
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except CorpusError:
        raise
    except (pypdf.errors.FileNotDecryptedError, pypdf.errors.DependencyError) as err:
        raise CorpusError(f"{encrypted} ({err})") from err
    except Exception as err:  # pypdf raises many kinds of error on a damaged file; each means the same here
        raise CorpusError(f"{path} could not be read as a PDF ({type(err).__name__}: {err}). It may be damaged or not "
                          "a PDF: open it and export or print it to a new PDF, or upload its text as .txt or .md.") from err
    if not "".join(pages).strip():
        raise CorpusError(f"{path} has no text layer: it is probably a scanned image. Run OCR on it first (e.g. "
                          "`ocrmypdf in.pdf out.pdf`) or upload its text as a .txt or .md file.")
    text = ""
    for page in pages:  # a page that ends mid-sentence runs on into the next; otherwise a page is a paragraph
        text += ("\n\n" if re.search(r"[.!?:\"”)]\s*$", text) else "\n") + page
    text = re.sub(r"(\w)-\n(?=[a-z])", r"\1", text)  # words hyphenated across a line break
    title = " ".join(str(meta_title or "").split())
    if not title or len(title) > 200 or not re.search(r"[^\W\d_]", title) or _JUNK_TITLE.match(title):
        title = _title_from_name(path)
    return _prose(path, title, paragraphs(text), shown)


# ---------------------------------------------------------------- folders and titles


def _supported_files(root: Path) -> list[Path]:
    """Every supported file under ``root``, sorted by path, hidden files and folders skipped."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in SUPPORTED_SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def _unique(reads: list[_Read], where: str) -> list[Document]:
    """The documents with unique titles (as search compares them): duplicate given titles are an error,
    a made-up section title that collides gets its file's title added: "Install (Guide)"."""
    given: dict[str, list[_Read]] = {}
    for r in reads:
        if r.qualifier is None:
            given.setdefault(normalize_title(r.doc.title), []).append(r)
    clashes = [rs for rs in given.values() if len(rs) > 1]
    if clashes:
        listed = "; ".join(f"{rs[0].doc.title!r} ({', '.join(r.origin for r in rs)})" for rs in clashes)
        raise CorpusError(f"Duplicate titles in {where}: {listed}. Each title must be unique so that search[title] "
                          "opens one article: rename the files or edit the titles.")
    taken = set(given)
    docs = []
    for r in reads:
        doc = r.doc
        if r.qualifier is not None:
            title, n = doc.title, 1
            while normalize_title(title) in taken:
                title = f"{doc.title} ({r.qualifier})" if n == 1 else f"{doc.title} ({r.qualifier}, {n})"
                n += 1
            if title != doc.title:
                doc = dataclasses.replace(doc, title=title, id="")
            taken.add(normalize_title(title))
        docs.append(doc)
    return docs
