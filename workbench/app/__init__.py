"""The Gradio app: one module per tab, wiring only; the work is done by the workbench API.

``import workbench.app`` does not import gradio; ``build_app`` and ``launch`` do.

    >>> demo = build_app(model="tiny")        # doctest: +SKIP
    >>> launch(model="tiny", port=7861)      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..corpus import Corpus
from ..deps import require
from ..knowledge import KnowledgeSources
from ..store.runs import Store
from .context import MAX_UPLOAD_MB, AppContext, ModelRegistry, finetuned_models

__all__ = ["build_app", "launch", "DEFAULT_HOST", "DEFAULT_PORT"]

DEFAULT_HOST = "127.0.0.1"  # never all interfaces unless the user says so
DEFAULT_PORT = 7860


def _examples() -> list[str]:
    try:
        from ..world.generate import example_questions

        return example_questions(8)
    except Exception:  # the app still works without the demo world's examples
        return []


def build_app(model: str | None = None, store: Store | str | Path | None = None, models: list[str] | None = None,
              corpus: Corpus | None = None, preload: bool = False, corpora: list[str | Path] | None = None,
              split_headings: bool = False) -> Any:
    """The Blocks app. ``model`` is the default model spec (None: the embedded SmolLM2); ``corpus`` replaces
    the demo world's encyclopedia; ``corpora`` are folders or files offered as knowledge sources too."""
    gr = require("gradio", "The app")

    from .attribution_tab import build_attribution_tab
    from .eval_tab import build_eval_tab
    from .finetune_tab import build_finetune_tab
    from .history_tab import build_history_tab, history_table
    from .prompt_tab import build_prompt_tab
    from .run_tab import build_run_tab

    store = store if isinstance(store, Store) else Store(store)
    registry = ModelRegistry(model, models, discover=lambda: finetuned_models(store))
    examples = _examples()
    knowledge = KnowledgeSources(store, folders=corpora or (), demo=corpus, demo_questions=examples,
                                 split_headings=split_headings)
    ctx = AppContext(store=store, models=registry, corpus=corpus, examples=examples, knowledge=knowledge)
    if preload:
        ctx.warm_up()
    with gr.Blocks(title="ReAct Workbench") as demo:
        gr.Markdown("# ReAct Workbench\nWatch a language model reason and act: Thought → Action → Observation.")
        with gr.Tabs() as tabs:
            with gr.Tab("Run", id="run"):
                run = build_run_tab(ctx)
            with gr.Tab("Prompt lab", id="prompts"):
                build_prompt_tab(ctx, run["outputs"], tabs)
            with gr.Tab("Attribution", id="attribution"):
                attribution = build_attribution_tab(ctx)
            with gr.Tab("Evaluate", id="evaluate"):
                build_eval_tab(ctx, run["outputs"], tabs, run)
            with gr.Tab("Fine-tune", id="finetune"):
                build_finetune_tab(ctx)
            with gr.Tab("History", id="history") as history_tab:
                history = build_history_tab(ctx, run["outputs"], tabs)
        # Opening History lists the runs made since the page loaded.
        history_tab.select(lambda q: history_table(ctx, q), [history["search"]], [history["table"]], api_name=False)
        # The Run tab's inspector hands its run and step to the Attribution tab.
        run["attribute_btn"].click(
            lambda run_id, step: (run_id, gr.update(choices=[step] if step else [], value=step),
                                  gr.Tabs(selected="attribution")),
            [run["run_id"], run["step_pick"]], [attribution["run_id"], attribution["step"], tabs], api_name=False)
    demo.workbench_context = ctx  # for tests and embedding
    return demo


def launch(model: str | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, store: str | Path | None = None,
           models: list[str] | None = None, preload: bool = True, block: bool = True,
           corpora: list[str | Path] | None = None, split_headings: bool = False, **kwargs: Any) -> Any:
    """Build and serve the app on ``host:port`` (127.0.0.1 unless told otherwise)."""
    require("gradio", "The app")
    from .render import CSS

    if model is None:  # the shipped fine-tuned adapter, once it exists; the base model stays one click away
        from ..models import shipped_adapter

        shipped = shipped_adapter()
        model = str(shipped) if shipped else None
    demo = build_app(model=model, store=store, models=models, preload=preload, corpora=corpora,
                     split_headings=split_headings)
    demo.queue(default_concurrency_limit=8)  # runs on one model decode together (batching.py): 8 cost about 3
    try:
        demo.launch(server_name=host, server_port=port, css=CSS, prevent_thread_lock=True, show_error=True,
                    max_file_size=f"{MAX_UPLOAD_MB}mb", footer_links=["api"], **kwargs)
    except ValueError as err:
        # Gradio checks that its own page answers within 3 s; on a busy machine (a model loading, a
        # benchmark running) it may not, although the server is up. Wait for it with patience instead.
        if "localhost is not accessible" not in str(err) or not _answers(demo.local_url, seconds=120):
            raise
        print(f"* Running on local URL:  {demo.local_url} (it answered slowly: the machine is busy)", flush=True)
    if block:
        demo.block_thread()
    return demo


def _answers(url: str, seconds: float) -> bool:
    """Whether ``url`` answers an HTTP request within ``seconds`` (retried, generous per-request timeout)."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our own local server
                return response.status < 500
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            time.sleep(1)
    return False
