"""The baseline the KV cache is measured against: ``model.generate`` on the whole sequence at every step.

Same ids, same greedy choices, same cut as generation.DecodeSession; only the reuse of keys and values is
missing (bench/agent_cache.py compares the two; ``Agent(reuse_cache=False)`` uses this one).
"""

from __future__ import annotations

import threading
import time

from .errors import ConfigError
from .generation import DecodeSession, Generation, GenerationConfig, StopFn, _Decoded

__all__ = ["NaiveSession"]


class NaiveSession(DecodeSession):
    """The baseline the cache is measured against: ``model.generate`` on the whole sequence at every step.

    Same ids, same greedy choices, same cut; only the reuse of keys and values is missing.
    """

    reuse_cache = False

    def generate(self, max_new_tokens: int = 128, stop: StopFn | None = None,
                 config: GenerationConfig | None = None, cancel: threading.Event | None = None) -> Generation:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        config = config or GenerationConfig(max_new_tokens=max_new_tokens)
        if not config.greedy:
            raise ConfigError("NaiveSession is a greedy baseline; use DecodeSession to sample.")
        limit = self._limit(config)
        start = len(self.ids)
        tokenizer = self.tokenizer

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):  # input_ids: (1, seq)
                text = tokenizer.decode(input_ids[0, start:].tolist())
                return torch.tensor([stop is not None and stop(text) is not None], device=input_ids.device)

        t0 = time.perf_counter()
        with torch.inference_mode():
            result = self.model.generate(
                input_ids=torch.tensor([self.ids], device=self.lm.device),
                attention_mask=torch.ones(1, start, dtype=torch.long, device=self.lm.device),
                max_new_tokens=limit, do_sample=False, stopping_criteria=StoppingCriteriaList([_Stop()]),
                output_scores=True, return_dict_in_generate=True, pad_token_id=self.lm.pad_token_id,
                eos_token_id=list(self._eos) or None,
            )
        elapsed = time.perf_counter() - t0
        gen = result.sequences[0, start:].tolist()
        out = _Decoded(ids=gen, logprobs=[float(torch.log_softmax(s[0].float(), -1)[t]) for s, t in zip(result.scores, gen)],
                       pieces=[tokenizer.decode(gen[: i + 1]) for i in range(len(gen))])
        self._gen_start = start
        self.ids.extend(gen)
        if gen and gen[-1] in self._eos:
            out.reason, out.pieces = "eos", out.pieces[:-1]
        elif out.pieces and stop is not None and stop(out.pieces[-1]) is not None:
            out.reason = "stop_string"
        self._cached, self._next_logits = 0, None
        return self._finish(out, stop=stop, prompt_tokens=start, reused=0, prefilled=start, t_prefill=0.0,
                            t_decode=elapsed)
