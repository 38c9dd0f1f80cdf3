"""The int8 model choice: the same model with its linear layers quantized to 8-bit integers.

Opt in by adding ``+int8`` to any model spec (``embedded+int8``, ``assets/smollm2-135m-react-lora+int8``,
a folder or id with ``+int8``); the app lists it as its own choice, "int8, faster, may differ".
PyTorch's dynamic quantization stores each nn.Linear's weights as int8 with a scale per tensor and
quantizes activations on the fly; the weights read per token drop to a quarter, which is what a
bandwidth-bound CPU decode pays for. Outputs differ from the float32 model (greedy tokens diverge
after a few dozen tokens on long steps), so its quality is measured beside the float model
(bench/throughput.py). CPU only: on a GPU the model runs in bfloat16 instead. Gradients do not flow
through quantized layers, so gradient attribution methods need the float model.

    >>> split_int8("embedded+int8")
    ('embedded', True)
    >>> split_int8("HuggingFaceTB/SmolLM2-360M")
    ('HuggingFaceTB/SmolLM2-360M', False)
"""

from __future__ import annotations

import warnings
from typing import Any

from .errors import ConfigError

__all__ = ["INT8_SUFFIX", "INT8_NOTE", "split_int8", "quantize_int8"]

INT8_SUFFIX = "+int8"
INT8_NOTE = "int8, faster, may differ"


def split_int8(spec: str | None) -> tuple[str | None, bool]:
    """(the float model's spec, whether int8 was asked for)."""
    if spec is not None and str(spec).endswith(INT8_SUFFIX):
        return str(spec)[: -len(INT8_SUFFIX)] or "embedded", True
    return spec, False


def quantize_int8(lm: Any) -> Any:
    """Quantize a LoadedModel's linear layers in place (pass a copy you own) and return it renamed.
    (Typed Any: models.py imports this module, so this one does not import models.py.)"""
    import torch

    if lm.device.type != "cpu":
        raise ConfigError(f"The int8 model is for CPUs; this model is on {lm.device}, where it runs in "
                          f"{str(lm.dtype).removeprefix('torch.')} already. Drop '{INT8_SUFFIX}' from the model name.")
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # the API is deprecated in favour of torchao, which this stack does not carry
        warnings.simplefilter("ignore")
        quantize_dynamic(lm.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    lm.name = f"{lm.name} ({INT8_NOTE})"
    lm.source = f"{lm.source}{INT8_SUFFIX}"
    lm.meta = {**(lm.meta or {}), "quantized": "int8"}
    return lm
