"""Shared fixtures. The default run downloads nothing: models are built in code or scripted."""

from __future__ import annotations

import os
import tempfile
from typing import Any, NamedTuple

import pytest

# Keep every test's files away from the user's own store; never reach for the network.
_HOME = tempfile.mkdtemp(prefix="workbench-tests-")
os.environ.setdefault("WORKBENCH_HOME", _HOME)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def tiny():
    from workbench.models import tiny_model

    return tiny_model(seed=0)


@pytest.fixture(scope="session")
def tiny_chat():
    from workbench.models import tiny_model

    return tiny_model(seed=1, chat_template=True)


@pytest.fixture
def corpus():
    from workbench.corpus import Corpus, Document

    return Corpus([
        Document("Varnholt", "Varnholt is a city in Quessaland. It lies on the river Drume. It was founded in 1312. "
                 "Its population is 48,200. The city is known for its glass workshops."),
        Document("Drume", "The Drume is a river in Quessaland. It is 412 km long. It rises on Mount Ossa."),
        Document("Mount Ossa", "Mount Ossa is a mountain in Quessaland. It is 2,310 m high."),
        Document("Quessaland", "Quessaland is a country. Its capital is Varnholt."),
        Document("Lio Brandt", "Lio Brandt is a novelist. Brandt was born in Varnholt in 1931. Brandt wrote The Glass Bell."),
    ], name="mini")


@pytest.fixture
def store(tmp_path):
    from workbench.store import Store

    return Store(tmp_path / "runs.db")


class Served(NamedTuple):
    """An app serving on 127.0.0.1 for a test module: its Blocks, its URL and the store it writes to."""

    demo: Any
    url: str
    store: Any  # a Store; with as_serve=True the path `workbench serve` was given

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def serve_app(tmp_path_factory):
    """A factory that starts the app on a free 127.0.0.1 port; every app it started closes after the module.

    ``serve_app("app", concurrency=4)``: ``build_app(model, store)`` served with its CSS and a queue of
    ``concurrency`` runs at once (None: Gradio's default), as the tabs' tests need it; ``models`` adds
    named models (a scripted one) before it starts. ``as_serve=True``: started with
    ``workbench.app.launch`` exactly as `workbench serve` starts it (its default host, no preload).
    ``store``: the store to use; by default a fresh one in a temporary folder called ``name``.
    """
    started = []

    def serve(name: str = "app", *, model: str = "tiny", store: Any = None, concurrency: int | None = None,
              models: dict[str, Any] | None = None, as_serve: bool = False) -> Served:
        from workbench.app import build_app, launch
        from workbench.app.render import CSS
        from workbench.store import Store
        from workbench.testing import free_port

        port = free_port()
        if as_serve:
            store = store or tmp_path_factory.mktemp(name) / "runs.db"
            Store(store)  # created before the server starts, as a user's existing store would be
            demo = launch(model=model, port=port, store=store, preload=False, block=False, quiet=True)
        else:
            store = store or Store(tmp_path_factory.mktemp(name) / "runs.db")
            demo = build_app(model=model, store=store)
            for label, extra in (models or {}).items():
                demo.workbench_context.models.add(label, extra)
            demo.queue(**({} if concurrency is None else {"default_concurrency_limit": concurrency}))
            demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, css=CSS, quiet=True)
        started.append(demo)
        return Served(demo, f"http://127.0.0.1:{port}/", store)

    yield serve
    for demo in started:
        demo.close()  # idempotent: a test may close its own app early


@pytest.fixture(scope="module")
def client(served):
    """A gradio_client Client of the app the test module serves (its own ``served`` fixture)."""
    from gradio_client import Client

    return Client(served[1], verbose=False)
