"""Shared fixtures. The default run downloads nothing: models are built in code or scripted."""

from __future__ import annotations

import os
import tempfile

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
