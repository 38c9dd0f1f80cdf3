"""The Run tab's "Your documents" panel: upload a corpus, list, remove, and give it example questions.

Wiring only: reading files, storing corpora and resolving sources is ``workbench.knowledge``.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..knowledge import DEMO_KEY, articles, parse_questions, read_question_file
from .context import MAX_UPLOAD_MB, AppContext, check_upload
from .wiring import guard, refresh_choices

__all__ = ["build_corpus_panel", "add_corpus", "remove_corpus", "source_examples"]

DOCUMENT_TYPES = [".jsonl", ".txt", ".md", ".markdown", ".pdf"]


def question_samples(questions: list[str]) -> list[list[str]]:
    return [[q] for q in questions]


def _paths(files: Any) -> list[str]:
    if not files:
        return []
    items = files if isinstance(files, (list, tuple)) else [files]
    return [str(getattr(f, "name", f)) for f in items if f]


def source_examples(ctx: AppContext, key: str | None) -> Any:
    """The example questions of a knowledge source, as the examples widget's new samples."""
    try:
        questions = ctx.knowledge.questions(key)
    except Exception:  # a source that vanished (removed in another session): no examples, no error
        questions = []
    return gr.Dataset(samples=question_samples(questions))


@guard  # a bad file is a message; nothing was stored
def add_corpus(ctx: AppContext, files: Any, name: str, split_headings: bool, questions_text: str,
               questions_file: Any) -> tuple[Any, ...]:
    """Store the uploaded files as one corpus: (status, source menu, examples, table). All or nothing."""
    paths = [check_upload(p) for p in _paths(files)]
    questions = parse_questions(questions_text)
    for q in _paths(questions_file):
        questions += read_question_file(check_upload(q))
    row = ctx.knowledge.add_files(paths, name, split_headings=bool(split_headings),
                                  questions=list(dict.fromkeys(questions)), max_bytes=MAX_UPLOAD_MB * 1024 * 1024)
    key = f"stored:{row['name']}"
    status = (f"Added **{row['name']}**: {articles(row['n_docs'])} (content hash `{row['hash']}`). "
              f"It is now the knowledge source; ask a question about it.")
    return (status, gr.update(choices=ctx.knowledge.choices(), value=key), source_examples(ctx, key),
            ctx.knowledge.table())


@guard
def remove_corpus(ctx: AppContext, key: str | None) -> tuple[Any, ...]:
    """Delete the selected uploaded corpus: (status, source menu, examples, table)."""
    if not key or key == DEMO_KEY:
        raise gr.Error("Pick an uploaded corpus as the knowledge source first; the demo world stays.")
    removed = ctx.knowledge.remove(key)
    status = f"Removed {key.split(':', 1)[-1]}." if removed else f"{key} was already gone."
    return (status, gr.update(choices=ctx.knowledge.choices(), value=DEMO_KEY), source_examples(ctx, DEMO_KEY),
            ctx.knowledge.table())


@guard
def save_questions(ctx: AppContext, key: str | None, questions_text: str) -> tuple[Any, ...]:
    """Replace the example questions of the selected corpus: (status, examples)."""
    questions = parse_questions(questions_text)
    ctx.knowledge.set_questions(key or DEMO_KEY, questions)
    return f"Saved {len(questions)} example question(s).", source_examples(ctx, key)


def build_corpus_panel(ctx: AppContext, knowledge: Any, examples: Any) -> dict[str, Any]:
    """Lay out the panel under the source menu; returns its components (tests and other tabs use them)."""
    with gr.Accordion("Your documents: upload a corpus", open=False, elem_id="wb-corpus-panel"):
        files = gr.File(label=f"Documents (up to {MAX_UPLOAD_MB} MB each): JSONL of {{title, text}}, .txt, .md, .pdf; "
                              "one article per file", file_count="multiple", file_types=DOCUMENT_TYPES,
                        type="filepath", elem_id="wb-corpus-files")
        with gr.Row():
            name = gr.Textbox(label="Corpus name", placeholder="default: the first file's name", elem_id="wb-corpus-name")
            split = gr.Checkbox(label="Split Markdown at headings (an article per heading)", value=False,
                                elem_id="wb-corpus-split")
        questions = gr.Textbox(label="Example questions about it (one per line)", lines=3,
                               elem_id="wb-corpus-questions")
        questions_file = gr.File(label="…or import questions: .txt (one per line) or a JSONL / HotpotQA suite",
                                 file_types=[".txt", ".jsonl", ".json"], type="filepath")
        with gr.Row():
            add = gr.Button("Add corpus", variant="primary", elem_id="wb-corpus-add")
            save_q = gr.Button("Save questions for the selected source", elem_id="wb-corpus-save-questions")
            remove = gr.Button("Remove the selected corpus", variant="stop", elem_id="wb-corpus-remove")
        status = gr.Markdown(elem_id="wb-corpus-status")
        table = gr.Dataframe(ctx.knowledge.table(), label="Your corpora", interactive=False, elem_id="wb-corpora")
    add.click(functools.partial(add_corpus, ctx), [files, name, split, questions, questions_file],
              [status, knowledge, examples, table], api_name="add_corpus", concurrency_limit=1)
    remove.click(functools.partial(remove_corpus, ctx), [knowledge], [status, knowledge, examples, table],
                 api_name="remove_corpus", concurrency_limit=1)
    save_q.click(functools.partial(save_questions, ctx), [knowledge, questions], [status, examples],
                 api_name="save_corpus_questions")
    knowledge.change(lambda key: source_examples(ctx, key), [knowledge], [examples], api_name=False)
    refresh_choices(ctx.knowledge.choices, knowledge)
    return {"corpus_files": files, "corpus_table": table, "corpus_status": status}
