"""The row path (fastforward.py) and batched decoding across runs (batching.py): same tokens, isolated runs."""

from __future__ import annotations

import copy
import threading

import pytest
import torch

from workbench.agent import Agent
from workbench.batching import batcher_for, default_batch, parallel_map
from workbench.datasets import load_suite
from workbench.evaluation import evaluate
from workbench.fastforward import GrowingCache, row_forward, use_rows
from workbench.generation import DecodeSession, GenerationConfig
from workbench.kvcache import crop_cache
from workbench.store.runs import Store
from workbench.testing import ScriptedModel, tiny_model


@pytest.fixture(scope="module")
def lm():
    return tiny_model(seed=3)


@pytest.fixture(scope="module")
def suite():
    return load_suite("demo:test").limit(6)


def _ids(trace):
    return [s.generation.token_ids if s.generation else None for s in trace.steps]


def _run(lm, suite, task, **kw):
    return Agent(lm, max_steps=3, max_new_tokens=48, corpus=suite.corpus_for(task), **kw).run(task.question)


# ------------------------------------------------------------------ the cache


def test_growing_cache_grows_crops_and_copies_like_a_transformers_cache():
    cache = GrowingCache(layers=2, kv_heads=2, head_dim=4, dtype=torch.float32, device=torch.device("cpu"))
    first = cache.capacity
    values = torch.arange(2 * 300 * 4, dtype=torch.float32).view(2, 300, 4)
    cache.reserve(300)
    assert cache.capacity >= 300 > first  # grown, by whole blocks
    for layer in range(2):
        k, v = cache.write(layer, values, -values)
        assert k.shape == (2, 300, 4)
    cache.advance(300)
    assert cache.get_seq_length() == 300
    crop_cache(cache, 120)  # the shim the sessions use: a negative crop under the hood
    assert cache.get_seq_length() == 120
    cache.crop(-100)
    assert cache.get_seq_length() == 20
    twin = copy.deepcopy(cache)
    assert twin.get_seq_length() == 20 and twin.capacity < cache.capacity  # only the held positions are copied
    assert torch.equal(twin.k[1][:, :20], values[:, :20]) and torch.equal(twin.v[0][:, :20], -values[:, :20])
    twin.k[0][:, :20] = 0  # the copy is independent
    assert torch.equal(cache.k[0][:, :20], values[:, :20])


# ------------------------------------------------------------------ the row path


def test_row_path_gives_the_hugging_face_forwards_tokens_and_logprobs(lm):
    def two_steps(on):
        use_rows(lm, on)
        try:
            s = DecodeSession(lm)
            s.feed("Question: which river is longest?\nThought:", "task", "task")
            g1 = s.generate(config=GenerationConfig(max_new_tokens=40))
            s.feed("\nObservation: The Drume is 410 km long.\nThought:", "observation", "obs")
            g2 = s.generate(config=GenerationConfig(max_new_tokens=40))
            return g1.token_ids + g2.token_ids, g1.logprobs + g2.logprobs, g2.reused_tokens
        finally:
            use_rows(lm, True)

    hf, rows = two_steps(False), two_steps(True)
    assert rows[0] == hf[0] and len(hf[0]) > 40
    assert max(abs(a - b) for a, b in zip(rows[1], hf[1])) < 1e-4
    assert rows[2] == hf[2] > 0  # the second step reused the cache on both paths


def test_agent_runs_are_identical_on_both_paths(lm, suite):
    use_rows(lm, False)
    try:
        before = [_ids(_run(lm, suite, t)) for t in suite.tasks[:3]]
    finally:
        use_rows(lm, True)
    after = [_ids(_run(lm, suite, t)) for t in suite.tasks[:3]]
    assert after == before


def test_the_output_projection_gives_the_same_values_by_each_kernel(lm):
    rows = row_forward(lm)
    weight = lm.model.lm_head.weight
    for n in (1, 3, 8):  # one row: the transposed layout; several: oneDNN where torch has it
        x = torch.randn(n, weight.shape[1], generator=torch.Generator().manual_seed(n))
        with torch.inference_mode():
            got = rows._head(x, weight)
        torch.testing.assert_close(got, torch.nn.functional.linear(x, weight), rtol=1e-5, atol=1e-5)
    assert rows._onednn == torch.backends.mkldnn.is_available()  # the kernel ran; it did not fall back


def test_models_of_other_kinds_keep_the_hugging_face_forward(lm):
    assert row_forward(lm) is not None
    assert default_batch(ScriptedModel([])) == 1  # a scripted test model has no forward at all
    lm.model.train()
    try:
        assert row_forward(lm) is None  # training mode: dropout and gradients belong to the HF forward
    finally:
        lm.model.eval()


def test_a_model_copied_after_decoding_builds_its_own_row_path(lm, suite):
    """copy.deepcopy (the randomisation check) and pickling must not carry the lock-holding caches along."""
    import pickle

    from workbench.attribution import randomized_copy

    _run(lm, suite, suite.tasks[0])
    assert batcher_for(lm) is not None  # the original now holds a RowForward and a batcher
    other = randomized_copy(lm, seed=0)  # deep-copies the model, then re-initialises every weight
    assert other.model.__dict__.get("_workbench_rows") is None
    assert other.model.__dict__.get("_workbench_batcher") is None
    pickle.dumps(lm.model)  # torch.save of the whole model goes through pickle
    rows = row_forward(other)
    assert rows is not None and rows is not row_forward(lm)
    assert rows.lm_head is other.model.lm_head  # decodes with the copy's weights, not the original's
    assert _ids(_run(other, suite, suite.tasks[0])) != _ids(_run(lm, suite, suite.tasks[0]))


# ------------------------------------------------------------------ batching


def test_runs_decoded_together_give_the_tokens_they_give_alone(lm, suite):
    alone = [_ids(_run(lm, suite, t)) for t in suite.tasks]
    b = batcher_for(lm)
    shared_before = b.stats.shared
    together = [_ids(tr) for tr in parallel_map(lambda t: _run(lm, suite, t), suite.tasks, 6)]
    assert together == alone
    assert b.stats.shared > shared_before  # passes really carried several runs
    assert b.stats.sessions_max >= 2


def test_a_failing_request_fails_only_its_own_run(lm):
    rows = row_forward(lm)
    b = batcher_for(lm)
    expected = rows.forward([(rows.new_cache(), [7, 8, 9], 1)])[0]
    good, bad = rows.new_cache(), rows.new_cache()
    out: dict[str, object] = {}
    start = threading.Barrier(2)

    def call(name, cache, ids):
        with b.session():
            start.wait()
            try:
                out[name] = b.forward(cache, ids, 1)
            except Exception as err:  # noqa: BLE001 - the test looks at which thread got it
                out[name] = err

    threads = [threading.Thread(target=call, args=("good", good, [7, 8, 9])),
               threading.Thread(target=call, args=("bad", bad, [10 ** 9]))]  # no such token
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert isinstance(out["bad"], IndexError)
    assert torch.allclose(out["good"], expected, atol=1e-5)
    assert good.get_seq_length() == 3 and bad.get_seq_length() == 0  # the failed pass left its cache as it was


def test_stopping_one_run_leaves_the_others_running(lm, suite):
    stop = threading.Event()
    stop.set()  # this run is stopped from the start; the others go on

    def run(i):
        task = suite.tasks[i]
        return Agent(lm, max_steps=3, max_new_tokens=48, corpus=suite.corpus_for(task)).run(
            task.question, cancel=stop if i == 0 else None)

    traces = list(parallel_map(run, [0, 1, 2], 3))
    assert traces[0].stop_reason == "cancelled"
    assert all(t.stop_reason != "cancelled" and t.steps for t in traces[1:])


def test_evaluation_batched_stores_the_rows_it_stores_one_at_a_time(lm, tmp_path):
    kw = dict(limit=6, store=Store(tmp_path / "s.db"), fresh=True)
    one = evaluate("demo:test", ["react"], lm, batch=1, **kw)
    many = evaluate("demo:test", ["react"], lm, batch=4, **kw)
    keys = ("task_id", "answer", "steps", "stop_reason", "tokens")
    assert [tuple(r[k] for k in keys) for r in many.rows] == [tuple(r[k] for k in keys) for r in one.rows]
    with pytest.raises(Exception, match="batch must be at least 1"):
        evaluate("demo:test", ["react"], lm, batch=0, **kw)


def test_the_int8_choice_quantizes_the_linear_layers_and_still_decodes_on_the_row_path():
    from workbench.models import load_model, model_label

    lm8 = load_model("tiny+int8")
    assert "int8" in lm8.name and lm8.meta["quantized"] == "int8"
    linear = lm8.model.model.layers[0].mlp.down_proj
    assert not isinstance(getattr(linear, "weight", None), torch.nn.Parameter)  # packed int8, not float weights
    s = DecodeSession(lm8)
    assert s._batcher is not None
    s.feed("Question: 2 + 2?\nThought:", "task", "task")
    assert len(s.generate(max_new_tokens=8).token_ids) > 0
    assert model_label("embedded+int8") == "SmolLM2-135M-Instruct (base) · int8, faster, may differ"


def test_the_app_offers_the_default_models_int8_choice_beside_it():
    from workbench.app.context import ModelRegistry

    registry = ModelRegistry("assets/smollm2-135m-react-lora")
    choices = registry.choices()
    int8 = [c for c in choices if c.endswith("int8, faster, may differ")]
    assert choices[0] == registry.default and len(int8) == 1
    assert registry._labels[int8[0]] == "assets/smollm2-135m-react-lora+int8"
    assert not [c for c in ModelRegistry("tiny").choices() if "int8" in c]  # the test model gets none


def test_gradient_attribution_on_the_int8_model_names_the_fix():
    from workbench.attribution import attribute_step
    from workbench.errors import InputError
    from workbench.models import load_model

    lm8 = load_model("tiny+int8")
    trace = Agent(lm8, max_steps=1, max_new_tokens=12).run("When was Varnholt founded?")
    with pytest.raises(InputError, match="float model"):
        attribute_step(trace, 1, model=lm8, method="layer_integrated_gradients", check_masks=0)
    assert attribute_step(trace, 1, model=lm8, method="feature_ablation", check_masks=0).scores is not None
