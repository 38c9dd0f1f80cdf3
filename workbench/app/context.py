"""What every tab of the app shares: the store, the loaded models, the corpus and per-session cancel flags.

No gradio here. The app never keeps per-user state in this object except the cancel flags, keyed
by the browser session, so no session sees another's run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..corpus import Corpus
from ..errors import InputError, ModelLoadError, WorkbenchError
from ..knowledge import KnowledgeSources
from ..models import LoadedModel, load_model, model_label
from ..store.runs import Store

__all__ = ["AppContext", "ModelRegistry", "finetuned_models", "EMBEDDED_LABEL", "MAX_UPLOAD_MB", "describe_error", "check_upload",
           "free_device_memory"]

EMBEDDED_LABEL = model_label(None)  # "SmolLM2-135M-Instruct (base)"
MAX_UPLOAD_MB = 10  # the largest file the app accepts (the server refuses bigger uploads too)


class ModelRegistry:
    """Models by readable label, loaded on first use and kept (loading is the slow part of a first run).

    Menus show labels (``model_label``: "SmolLM2-135M-Instruct + react LoRA (shipped)"), never a
    folder's absolute path; the registry maps each label back to the spec ``load_model`` takes. A
    value typed by the user (a Hugging Face id or a folder) is its own spec.
    """

    def __init__(self, default: str | None = None, extra: list[str] | None = None,
                 discover: Callable[[], list[str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._labels: dict[str, str | None] = {EMBEDDED_LABEL: None}  # label -> load_model spec
        self.default = self.label_for(default)
        self.extra = [label for label in (self.label_for(m) for m in (extra or []) if m) if label != self.default]
        self.discover = discover  # more choices found at call time (finished fine-tunes)
        self._models: dict[str, LoadedModel] = {}

    def label_for(self, spec: str | None) -> str:
        """The menu label of a spec (registered, so ``spec(label)`` finds the spec again)."""
        if spec is not None and spec in self._labels:  # already a label
            return spec
        spec = None if spec is None or str(spec).strip() in ("", "embedded") else str(spec).strip()
        with self._lock:
            for label, known in self._labels.items():
                if known == spec:
                    return label
            label, n = model_label(spec), 2
            while label in self._labels:  # two folders of the same name
                label, n = f"{model_label(spec)} [{n}]", n + 1
            self._labels[label] = spec
            return label

    def choices(self) -> list[str]:
        found: list[str] = []
        if self.discover is not None:
            try:
                found = [self.label_for(spec) for spec in self.discover()]
            except Exception:  # a store that cannot be read must not break the model list
                found = []
        return list(dict.fromkeys([self.default, EMBEDDED_LABEL, *self._int8(), *self.extra, *found]))

    def _int8(self) -> list[str]:
        """The default model's int8 choice ("int8, faster, may differ"), on a CPU, where it is faster."""
        from ..models import pick_device
        from ..quantize import INT8_SUFFIX

        spec = self._labels.get(self.default)
        if pick_device()[0].type != "cpu" or (spec or "").startswith("tiny") or (spec or "").endswith(INT8_SUFFIX):
            return []
        return [self.label_for(f"{spec or 'embedded'}{INT8_SUFFIX}")]

    def spec(self, label: str | None) -> str | None:
        """The load_model spec of a menu label (the embedded model's is None; a typed value is itself)."""
        if not label:
            return None
        if label in self._labels:
            return self._labels[label]
        return label.strip()

    def add(self, label: str, model: Any) -> None:
        """Offer an already loaded model (or a ScriptedModel) under ``label``: for embedding and tests."""
        with self._lock:
            self._models[label] = model

    def get(self, label: str | None) -> LoadedModel:
        key = label or self.default
        spec = self.spec(key)
        with self._lock:
            if key not in self._models:
                try:
                    self._models[key] = load_model(spec)
                except Exception as err:
                    if _is_oom(err) or _is_oom(err.__cause__):
                        free_device_memory()
                        raise ModelLoadError(f"Out of memory while loading {key!r}: the device has no room for it. "
                                             "Pick a smaller model, or close other runs and try again.") from err
                    raise
            return self._models[key]


@dataclass
class AppContext:
    """The shared, thread-safe parts of a running app."""

    store: Store
    models: ModelRegistry
    corpus: Corpus | None = None  # the demo world's place: None loads the demo world's encyclopedia on first use
    examples: list[str] = field(default_factory=list)  # the demo world's example questions
    knowledge: KnowledgeSources | None = None  # every corpus a run may search (built from the above when None)
    _cancel: dict[str, threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel_event(self, session: str) -> threading.Event:
        """A fresh cancel flag for a session's new run (replacing its last one)."""
        with self._lock:
            event = threading.Event()
            self._cancel[session] = event
            return event

    def cancel(self, session: str) -> bool:
        with self._lock:
            event = self._cancel.get(session)
        if event is None:
            return False
        event.set()
        return True

    def warm_up(self) -> None:
        """Load the default model and compute the react prompt's shared prefix, so the first run is quick."""
        from ..agent import Agent

        lm = self.models.get(self.models.default)
        session = Agent(lm, corpus=self.get_corpus()).open_session("warm-up")
        session.generate(max_new_tokens=1)

    def __post_init__(self) -> None:
        if self.knowledge is None:
            self.knowledge = KnowledgeSources(self.store, demo=self.corpus, demo_questions=self.examples)

    def get_corpus(self, source: str | None = None) -> Corpus:
        """The corpus of a knowledge source key or label (None: the demo world)."""
        return self.knowledge.get(source)


def finetuned_models(store: Store) -> list[str]:
    """Folders of finished agent fine-tunes (the shipped adapter first) that load as models."""
    from ..models import is_finetune_folder, shipped_adapter

    found = [str(p) for p in [shipped_adapter()] if p]
    for job in store.list_jobs(limit=100, kind="agent"):
        folder = (job.get("result") or {}).get("adapter_dir") if job["state"] == "done" else None
        if is_finetune_folder(folder):
            found.append(folder)
    return found


def check_upload(path: str | None) -> str | None:
    """The uploaded file's path, or an InputError when it is larger than the app accepts."""
    if not path:
        return None
    import os

    size = os.path.getsize(path)
    if size > MAX_UPLOAD_MB * 1024 * 1024:
        raise InputError(f"The uploaded file is {size / 1024 / 1024:.1f} MB; the app accepts up to {MAX_UPLOAD_MB} MB. "
                         "Evaluate a bigger file from the command line: workbench eval --suite PATH.")
    return path


def _is_oom(err: BaseException | None) -> bool:
    return err is not None and (type(err).__name__ == "OutOfMemoryError" or "out of memory" in str(err).lower())


def free_device_memory() -> None:
    """Give cached GPU memory back after an out-of-memory error, so the next run can have it."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def describe_error(err: Exception) -> str:
    """A message for the user: the workbench's own errors already say what to do."""
    if isinstance(err, WorkbenchError):
        return str(err)
    return f"{type(err).__name__}: {err}"
