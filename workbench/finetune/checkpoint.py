"""Model folders written atomically: a new one is complete on disk before it replaces the old one.

``write_model_folder`` is the one way a folder of weights is written here (checkpoints, the trained
adapter, the verifier, an exported copy): into ``NAME.tmp``, then swapped in with renames, so a
process killed at any moment leaves either the old or the new folder loadable, never a half-written one.

A checkpoint is such a folder: ``weights.safetensors`` (the LoRA weights, or every weight for a full
fine-tune), ``optimizer.pt`` (optimizer and scheduler state and the RNG states), ``state.json``
(step, epoch, position in the epoch, the config).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "trainable_state", "load_trainable_state",
           "export_adapter", "write_model_folder"]

CHECKPOINT = "checkpoint"


def trainable_state(model: Any, method: str) -> dict[str, Any]:
    """The weights that training changes: the LoRA matrices, or all of them."""
    if method == "lora":
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(model)
    else:
        state = model.state_dict()
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def load_trainable_state(model: Any, method: str, state: dict[str, Any]) -> None:
    if method == "lora":
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, state)
    else:
        model.load_state_dict(state, strict=False)


def save_checkpoint(folder: str | Path, model: Any, method: str, optimizer: Any, scheduler: Any,
                    state: dict[str, Any]) -> Path:
    """Write a checkpoint into ``folder/checkpoint`` atomically; returns its path."""
    import torch
    from safetensors.torch import save_file

    def write_files(tmp: Path) -> None:
        save_file(_dedupe(trainable_state(model, method)), str(tmp / "weights.safetensors"))
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
                   tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1))

    return write_model_folder(Path(folder) / CHECKPOINT, write_files)


def write_model_folder(folder: str | Path, write_files: Callable[[Path], None],
                       info: dict[str, Any] | None = None) -> Path:
    """Write ``folder`` atomically: ``write_files(tmp)`` fills ``NAME.tmp`` (plus ``workbench.json`` from ``info``),
    then renames swap it in (the old folder goes to ``NAME.old`` until the new one is in place).

        >>> write_model_folder(out / "adapter", lambda tmp: model.save_pretrained(str(tmp)),   # doctest: +SKIP
        ...                    {"kind": "workbench-finetune"})
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write_files(tmp)
    if info is not None:
        (tmp / "workbench.json").write_text(json.dumps(info, indent=1))
    _fsync_dir(tmp)
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    _fsync_dir(folder.parent)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The complete checkpoint in ``folder`` (the old one when a swap was interrupted), or None."""
    folder = Path(folder)
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
        path = folder / name
        if (path / "state.json").is_file() and (path / "weights.safetensors").is_file():
            return path
    return None


def load_checkpoint(path: str | Path, model: Any, method: str, optimizer: Any = None, scheduler: Any = None) -> dict:
    """Load weights (and optimizer, scheduler, RNG states when given); returns the saved state dict."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    load_trainable_state(model, method, load_file(str(path / "weights.safetensors")))
    if optimizer is not None and (path / "optimizer.pt").is_file():
        saved = torch.load(path / "optimizer.pt", weights_only=True)  # tensors and numbers only
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"]["torch"])
        if "cuda" in saved["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
    return json.loads((path / "state.json").read_text())


def _dedupe(state: dict[str, Any]) -> dict[str, Any]:
    """safetensors refuses tensors that share memory (tied embeddings): keep one copy each."""
    seen: dict[int, str] = {}
    out = {}
    for k, v in state.items():
        ptr = v.data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen.setdefault(ptr, k)
    return out


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def export_adapter(folder: str | Path, dest: str | Path, dtype: str = "float16") -> Path:
    """Copy a fine-tune's adapter folder to ``dest`` with its weights stored as ``dtype`` (half the size).

    peft upcasts half-precision adapter weights when it loads them, so the copy loads like the original."""
    import torch
    from safetensors.torch import load_file, save_file

    def write_files(tmp: Path) -> None:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        weights = tmp / "adapter_model.safetensors"
        if weights.is_file():
            target = getattr(torch, dtype)
            state = {k: v.to(target) for k, v in load_file(str(weights)).items()}
            save_file(state, str(weights), metadata={"format": "pt"})

    return write_model_folder(dest, write_files)
