"""Checkpoints written atomically: a new one is complete on disk before it replaces the old one.

A checkpoint is a folder: ``weights.safetensors`` (the LoRA weights, or every weight for a full
fine-tune), ``optimizer.pt`` (optimizer and scheduler state and the RNG states), ``state.json``
(step, epoch, position in the epoch, the config). It is written to ``checkpoint.tmp``, then
swapped in with renames, so a process killed at any moment leaves either the old or the new
checkpoint loadable, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "trainable_state", "load_trainable_state",
           "export_adapter"]

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

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final, tmp, old = folder / CHECKPOINT, folder / f"{CHECKPOINT}.tmp", folder / f"{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = trainable_state(model, method)
    save_file(_dedupe(weights), str(tmp / "weights.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
               tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    _fsync_dir(folder)
    shutil.rmtree(old, ignore_errors=True)
    return final


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

    folder, dest = Path(folder), Path(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(folder, tmp)
    weights = tmp / "adapter_model.safetensors"
    if weights.is_file():
        target = getattr(torch, dtype)
        state = {k: v.to(target) for k, v in load_file(str(weights)).items()}
        save_file(state, str(weights), metadata={"format": "pt"})
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest
