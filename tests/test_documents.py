"""Users' own documents: files and folders read into a Corpus, stored in the run store, searched by the tools."""

from __future__ import annotations

import sqlite3
import sys

import pytest

from workbench.corpus import Corpus, Document
from workbench.documents import load_corpus_path, read_documents
from workbench.errors import CorpusError, InputError, MissingDependencyError, StoreError
from workbench.store import SCHEMA_VERSION, Store
from workbench.tools import ToolContext, default_tools


def pdf_bytes(lines: list[str], title: str | None = None) -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (Helvetica, one Tj per line), xref offsets computed."""
    esc = lambda s: s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")  # noqa: E731
    stream = "BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(f"({esc(line)}) Tj T*" for line in lines) + " ET"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
               "/Contents 5 0 R >>",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream"]
    if title is not None:
        objects.append(f"<< /Title ({esc(title)}) >>")
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    info = f" /Info {len(objects)} 0 R" if title is not None else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


GUIDE = """# The Guide

Welcome to **the guide**. See [the docs](https://example.org/a_(b)) for *more*.
This sentence is wrapped
over two lines.

## Install

- first step
- second step with `snake_case` code

```
# not a heading
x = 1
```

### Details

Deep text here.

## Usage

Run it daily.
"""


# ---------------------------------------------------------------- formats


def test_txt_is_one_article_titled_by_the_file_name_with_paragraphs(tmp_path):
    path = tmp_path / "river_drume-notes.txt"
    path.write_bytes("\ufeffOverview without a full stop\r\n\r\nThe Drume is a river.   It is\r\n412 km long.\n".encode())
    (doc,) = read_documents(path)
    assert doc.title == "river drume notes"
    assert doc.text == "Overview without a full stop\n\nThe Drume is a river. It is 412 km long."
    assert doc.sentences == ["Overview without a full stop", "The Drume is a river.", "It is 412 km long."]
    assert doc.meta == {"source": "river_drume-notes.txt"}


def test_markdown_is_one_article_titled_by_its_first_heading_with_markup_stripped(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(GUIDE, encoding="utf-8")
    (doc,) = read_documents(path)
    assert doc.title == "The Guide"
    assert doc.text.startswith("Welcome to the guide. See the docs for more. This sentence is wrapped over two lines.")
    for markup in ("**", "](", "https://", "`", "- first", "## "):
        assert markup not in doc.text
    assert "first step\n\nsecond step with snake_case code" in doc.text  # bullets gone, one paragraph per item
    assert "# not a heading x = 1" in doc.text  # code is kept as plain text, never read as a heading
    assert "This sentence is wrapped over two lines." in doc.sentences
    assert "Install" in doc.sentences  # a heading is a paragraph of its own, not glued to the next sentence


def test_markdown_without_heading_is_titled_by_the_file_name(tmp_path):
    path = tmp_path / "mount_ossa.markdown"
    path.write_text("Mount Ossa is a _mountain_.\n\nIt is 2,310 m high.\n", encoding="utf-8")
    (doc,) = read_documents(path)
    assert (doc.title, doc.sentences) == ("mount ossa", ["Mount Ossa is a mountain.", "It is 2,310 m high."])


def test_markdown_split_at_headings(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("Text before any heading.\n\n" + GUIDE.replace("# The Guide\n", "## Intro\n"), encoding="utf-8")
    docs = read_documents(path, split_headings=True)
    assert [d.title for d in docs] == ["guide", "Intro", "Install", "Usage"]  # no '# ' heading: the file name
    assert docs[0].text == "Text before any heading."
    assert docs[2].sentences[-2:] == ["Details", "Deep text here."]  # level 3 stays inside its section
    assert docs[3].meta == {"source": "guide.md", "section": "Usage"}


def test_split_titles_that_collide_are_disambiguated_not_refused(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nIntro.\n\n## Usage\n\nOne.\n\n## usage\n\nTwo.\n\n## Usage\n\nThree.\n", encoding="utf-8")
    docs = read_documents(path, split_headings=True)
    assert [d.title for d in docs] == ["Guide", "Usage", "usage (Guide)", "Usage (Guide, 2)"]
    assert docs[2].id == "usage guide"


def test_jsonl(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"title": "A", "text": "First. Second."}\n\n{"title": "B", "text": "Third.", "meta": {"k": 1}}\n',
                    encoding="utf-8")
    docs = read_documents(path)
    assert [(d.title, d.sentences, d.meta) for d in docs] == [("A", ["First.", "Second."], {}), ("B", ["Third."], {"k": 1})]


def test_pdf_with_a_text_layer(tmp_path):
    path = tmp_path / "varnholt_notes.pdf"
    path.write_bytes(pdf_bytes(["Varnholt is a city in Quessa-", "land. It lies on the river Drume."], title="Varnholt"))
    (doc,) = read_documents(path)
    assert doc.title == "Varnholt"
    assert doc.sentences == ["Varnholt is a city in Quessaland.", "It lies on the river Drume."]


@pytest.mark.parametrize("title", [None, "", "Microsoft Word - notes.docx", "untitled", "1234"])
def test_pdf_without_a_sensible_title_is_titled_by_the_file_name(tmp_path, title):
    path = tmp_path / "varnholt_notes.pdf"
    path.write_bytes(pdf_bytes(["Varnholt is a city."], title=title))
    assert read_documents(path)[0].title == "varnholt notes"


# ---------------------------------------------------------------- bad input


def test_scanned_pdf_says_to_run_ocr(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "scan.pdf"
    writer.write(path)
    with pytest.raises(CorpusError, match=r"scan.pdf has no text layer: it is probably a scanned image.*ocrmypdf"):
        read_documents(path)


def test_encrypted_and_damaged_pdfs(tmp_path):
    from pypdf import PdfReader, PdfWriter

    plain = tmp_path / "plain.pdf"
    plain.write_bytes(pdf_bytes(["Secret text."]))
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt("hunter2", algorithm="RC4-128")
    writer.write(tmp_path / "locked.pdf")
    with pytest.raises(CorpusError, match=r"locked.pdf is encrypted \(password-protected\).*qpdf --decrypt"):
        read_documents(tmp_path / "locked.pdf")
    (tmp_path / "fake.pdf").write_bytes(b"this is not a PDF at all")
    with pytest.raises(CorpusError, match=r"fake.pdf could not be read as a PDF .* damaged or not a PDF"):
        read_documents(tmp_path / "fake.pdf")


def test_missing_pypdf_names_the_install_command(tmp_path, monkeypatch):
    path = tmp_path / "a.pdf"
    path.write_bytes(pdf_bytes(["Text."]))
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes `import pypdf` fail as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"needs the package 'pypdf'.*pip install 'pypdf>=5.0'.*\[app\]"):
        read_documents(path)


@pytest.mark.parametrize("name,content,message", [
    ("a.txt", b"", r"a.txt is empty \(or only whitespace\)"),
    ("a.md", b" \n\t\n", r"a.md is empty \(or only whitespace\)"),
    ("a.txt", b"abc\x00\x01def", r"a.txt looks like a binary file \(it contains NUL bytes\).*UTF-8"),
    ("a.txt", "Caf\u00e9 cr\u00e8me.".encode("latin-1"), r"a.txt is not valid UTF-8 text \(byte 0xe9 at offset 3\)\. Save it as UTF-8"),
    ("a.jsonl", b'{"title": "A", "text": "x."}\n{"title": "B"}\n', r"a.jsonl:2: field 'text' is missing or empty"),
    ("a.md", b"# Only a title\n\n---\n<!-- a comment -->\n", r"a.md holds no text to search"),
    ("a.docx", b"PK\x03\x04", r"files of type '.docx' cannot be read as documents. Accepted: .txt, .md, .markdown, .pdf, .jsonl"),
    ("a.pdf", b"   ", r"a.pdf is empty"),
])
def test_bad_files_name_the_file_and_the_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        read_documents(path)


def test_file_over_the_size_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("word " * 500, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"big.txt is 2.4 KiB, over the limit of 1000 bytes per file\. Split it into smaller files, or raise the limit"):
        read_documents(path, max_bytes=1000)
    assert len(read_documents(path, max_bytes=2500)) == 1


def test_duplicate_titles_list_the_titles_and_where_they_came_from(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"title": "A", "text": "x."}\n{"title": "B", "text": "y."}\n'
                                      '{"title": "a", "text": "z."}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"Duplicate titles in .*c.jsonl: 'A' \(c.jsonl line 1, c.jsonl line 3\)"):
        read_documents(tmp_path / "c.jsonl")
    (tmp_path / "c.jsonl").unlink()
    (tmp_path / "Drume.txt").write_text("The Drume is a river.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "river.md").write_text("# drume\n\nIt is long.", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"Duplicate titles in corpus .*: 'Drume' \(Drume.txt, sub/river.md\)\. "
                                          r"Each title must be unique"):
        load_corpus_path(tmp_path)


def test_corpus_from_jsonl_shares_the_reader_and_its_checks(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"title": "Caf\xe9", "text": "x."}\n')
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        Corpus.from_jsonl(path)
    path.write_text('{"title": "A", "text": "One. Two."}\n', encoding="utf-8")
    assert Corpus.from_jsonl(path).documents[0].sentences == ["One.", "Two."]


# ---------------------------------------------------------------- folders


def test_folder_reads_every_supported_file_sorted_skipping_hidden_and_others(tmp_path):
    root = tmp_path / "my_notes"
    (root / "b").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "x.md").write_text("# Hidden folder", encoding="utf-8")
    (root / ".draft.txt").write_text("Hidden file.", encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG\x00")
    (root / "z.txt").write_text("Zed.", encoding="utf-8")
    (root / "b" / "guide.md").write_text(GUIDE, encoding="utf-8")
    (root / "a.jsonl").write_text('{"title": "Alpha", "text": "A."}\n', encoding="utf-8")
    (root / "b" / "doc.pdf").write_bytes(pdf_bytes(["From a PDF."], title="Paper"))
    corpus = load_corpus_path(root)
    assert corpus.name == "my_notes"
    assert corpus.titles == ["Alpha", "Paper", "The Guide", "z"]
    assert corpus.get("the guide").meta == {"source": "b/guide.md"}
    assert load_corpus_path(root, name="mine", split_headings=True).titles == [
        "Alpha", "Paper", "The Guide", "Install", "Usage", "z"]


def test_split_titles_that_collide_across_files_get_their_file_title(tmp_path):
    (tmp_path / "a.md").write_text("# Alpha\n\nA.\n\n## Install\n\nPip.\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Beta\n\nB.\n\n## Install\n\nApt.\n", encoding="utf-8")
    (tmp_path / "install.txt").write_text("Given title wins.", encoding="utf-8")
    corpus = load_corpus_path(tmp_path, split_headings=True)
    assert corpus.titles == ["Alpha", "Install (Alpha)", "Beta", "Install (Beta)", "install"]
    assert corpus.get("install (beta)").text == "Apt."


def test_single_file_corpus_and_folders_without_documents(tmp_path):
    (tmp_path / "notes.md").write_text("Just text.", encoding="utf-8")
    assert load_corpus_path(tmp_path / "notes.md").name == "notes"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "photo.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(CorpusError, match=r"holds no file that can be read as documents. Accepted: .txt, .md, .markdown"):
        load_corpus_path(empty)
    with pytest.raises(CorpusError, match=r"No file or folder at .*nowhere"):
        load_corpus_path(tmp_path / "nowhere")


def test_one_bad_file_fails_the_whole_folder_naming_that_file(tmp_path):
    (tmp_path / "a.txt").write_text("Good.", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"\xff\xfeb\x00a\x00d\x00")  # UTF-16
    (tmp_path / "c.txt").write_text("Good too.", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"b.txt looks like a binary file"):
        load_corpus_path(tmp_path)


# ---------------------------------------------------------------- store


@pytest.fixture
def notes(tmp_path) -> Corpus:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "guide.md").write_text(GUIDE, encoding="utf-8")
    (tmp_path / "notes" / "drume.txt").write_text("Heading line\n\nThe Drume is a river. It is long.", encoding="utf-8")
    return load_corpus_path(tmp_path / "notes", split_headings=True)


def test_store_round_trip_keeps_fingerprint_sentences_and_order(store, notes):
    row = store.save_corpus(notes, source="folder notes/")
    assert (row["name"], row["hash"], row["n_docs"], row["source"]) == ("notes", notes.fingerprint, 4, "folder notes/")
    again = store.load_corpus("notes")
    assert again.fingerprint == notes.fingerprint
    assert again.titles == notes.titles
    assert [d.sentences for d in again] == [d.sentences for d in notes]
    assert [(d.id, d.meta) for d in again] == [(d.id, d.meta) for d in notes]
    assert store.list_corpora() == [row]


def test_same_name_needs_replace_unless_the_content_is_the_same(store, notes):
    first = store.save_corpus(notes)
    assert store.save_corpus(same_content_copy(notes)) == first  # same content: the stored row, unchanged
    other = Corpus([Document("Other", "Other text.")], name="notes")
    with pytest.raises(InputError, match=r"A corpus named 'notes' is already stored \(4 documents\) with other "
                                         r"content. Pass replace=True"):
        store.save_corpus(other)
    replaced = store.save_corpus(other, source="new", replace=True)
    assert store.load_corpus("notes").titles == ["Other"]
    assert store.list_corpora() == [replaced]
    store.save_corpus(Corpus([Document("X", "Y.")], name="newer"))
    assert [c["name"] for c in store.list_corpora()] == ["newer", "notes"]


def same_content_copy(corpus: Corpus) -> Corpus:
    return Corpus([Document(d.title, d.text) for d in corpus], name=corpus.name)


def test_failed_save_stores_nothing_and_keeps_the_old_corpus(store, notes):
    store.save_corpus(notes)
    before = store.list_corpora()
    bad = Corpus([Document("A", "a."), Document("B", "b.", meta={"x": object()}), Document("C", "c.")], name="notes")
    with pytest.raises(InputError, match=r"Document 'B' of corpus 'notes' has meta that cannot be stored as JSON"):
        store.save_corpus(bad, replace=True)  # fails after the old rows were deleted and 'A' was written
    bad.name = "fresh"
    with pytest.raises(InputError, match="cannot be stored as JSON"):
        store.save_corpus(bad)
    assert store.list_corpora() == before
    assert store.load_corpus("notes").fingerprint == notes.fingerprint
    assert store.integrity_check() == "ok"
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM corpus_documents").fetchone()[0] == len(notes)


def test_delete_and_unknown_names(store, notes):
    with pytest.raises(StoreError, match=r"No corpus named 'notes' in .*No corpus is stored yet"):
        store.load_corpus("notes")
    store.save_corpus(notes)
    with pytest.raises(StoreError, match=r"No corpus named 'nope' in .*Stored corpora: notes\."):
        store.load_corpus("nope")
    assert store.delete_corpus("notes") is True
    assert store.delete_corpus("notes") is False
    assert store.list_corpora() == []
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM corpus_documents").fetchone()[0] == 0


def test_a_schema_5_store_migrates(tmp_path, notes):
    path = tmp_path / "old.db"
    Store(path)
    with sqlite3.connect(path) as conn:  # make it as the workbench before corpora left it
        conn.execute("DROP TABLE corpora")
        conn.execute("DROP TABLE corpus_documents")
        conn.execute("UPDATE meta SET value='5' WHERE key='schema_version'")
        conn.execute("INSERT INTO prompt_versions VALUES ('v1', 'p', 'h', NULL, '', 1.0, 'yaml: 1')")
    store = Store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert SCHEMA_VERSION >= 6  # corpora came with 6; later versions migrate through it
    assert store.prompt_version("v1")["yaml"] == "yaml: 1"
    store.save_corpus(notes)
    assert store.load_corpus("notes").fingerprint == notes.fingerprint


# ---------------------------------------------------------------- the tools


def test_search_and_lookup_work_on_a_markdown_corpus_as_on_the_demo_world(tmp_path):
    from workbench.world import load_world

    world = load_world().corpus
    for i, d in enumerate(world):  # the demo world's articles, written as the Markdown files a user would bring
        (tmp_path / f"{i:04d}.md").write_text(f"# {d.title}\n\n{d.text}\n", encoding="utf-8")
    mine = load_corpus_path(tmp_path)
    assert mine.fingerprint == world.fingerprint
    assert [d.sentences for d in mine] == [d.sentences for d in world]
    tools = default_tools()
    for d in world:
        keyword = d.sentences[-1].split()[-1].strip(".")
        ours, theirs = ToolContext(corpus=mine), ToolContext(corpus=world)
        opened = tools.run("search", d.title.lower(), ours)
        assert opened == tools.run("search", d.title.lower(), theirs)
        assert opened == " ".join(d.sentences[:3])
        found = tools.run("lookup", keyword, ours)
        assert found == tools.run("lookup", keyword, theirs)
        assert found.startswith("(Result 1 / ")


def test_search_and_lookup_on_a_users_markdown_notes(tmp_path):
    (tmp_path / "varnholt.md").write_text("# Varnholt\n\nVarnholt is a *city* in [Quessaland](q.md).\n\n"
                                          "## History\n\n- It was founded in 1312.\n- It grew.\n", encoding="utf-8")
    ctx, tools = ToolContext(corpus=load_corpus_path(tmp_path)), default_tools()
    assert tools.run("search", "VARNHOLT", ctx) == "Varnholt is a city in Quessaland. History It was founded in 1312."
    assert tools.run("lookup", "founded", ctx) == "(Result 1 / 1) It was founded in 1312."


def test_missing_files_and_folders_given_to_read_documents(tmp_path):
    with pytest.raises(CorpusError, match=r"No file at .*gone.md\. Pass the path of a file \(.txt, .md"):
        read_documents(tmp_path / "gone.md")
    with pytest.raises(CorpusError, match=r"is a folder; read_documents reads one file. Use load_corpus_path"):
        read_documents(tmp_path)
