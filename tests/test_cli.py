"""The workbench command, run as a user would run it."""

import json
import subprocess
import sys

import pytest

from workbench.cli import main


def _cli(*args, env_store):
    return subprocess.run([sys.executable, "-m", "workbench.cli", "--store", str(env_store), *args],
                          capture_output=True, text=True, timeout=300)


def test_run_prints_steps_and_json_and_saves_the_run(tmp_path):
    store = tmp_path / "runs.db"
    out = _cli("run", "What is 2 + 3?", "--model", "tiny", "--max-steps", "2", "--max-new-tokens", "8", "--json",
               env_store=store)
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    assert trace["task"] == "What is 2 + 3?" and trace["model"] == "tiny-random-0"
    assert len(trace["steps"]) == 2 and trace["stop_reason"] == "max_steps"
    assert "--- step 1" in out.stderr and f"saved as run {trace['id']}" in out.stderr
    listed = _cli("runs", env_store=store)
    assert trace["id"] in listed.stdout
    shown = _cli("show", trace["id"], "--json", env_store=store)
    assert json.loads(shown.stdout)["id"] == trace["id"]


def test_run_in_each_mode_in_process(tmp_path, capsys):
    for mode in ("cot", "direct", "act"):
        code = main(["--store", str(tmp_path / "r.db"), "run", "What is 2 + 3?", "--model", "tiny", "--mode", mode,
                     "--max-steps", "1", "--max-new-tokens", "4", "--no-save"])
        assert code == 0
    assert main(["--store", str(tmp_path / "r.db"), "run", "Varnholt?", "--model", "tiny", "--retrieval", "hybrid",
                 "--max-steps", "1", "--max-new-tokens", "4", "--no-save"]) == 0
    assert capsys.readouterr().out.count("=== answer:") == 4


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "   ", "--model", "tiny"], "The instruction is empty"),
        (["run", "q", "--model", "/no/such/folder"], "No model folder at /no/such/folder"),
        (["run", "q", "--model", "tiny", "--max-steps", "0"], "max_steps must be between 1 and 50"),
        (["show", "nope"], "No run with id 'nope'"),
        (["run", "q", "--model", "tiny", "--prompt", "nosuch"], "Presets:"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, args, message):
    assert main(["--store", str(tmp_path / "r.db"), *args]) == 2
    assert message in capsys.readouterr().err


def test_world_command_writes_a_world(tmp_path, capsys):
    assert main(["world", "--seed", "3", "--out", str(tmp_path / "w")]) == 0
    assert (tmp_path / "w" / "corpus.jsonl").is_file()
    assert (tmp_path / "w" / "tasks" / "test.jsonl").is_file()
    assert "seed 3" in capsys.readouterr().out


def test_world_command_writes_demo2_to_its_own_folder(tmp_path, capsys, monkeypatch):
    from workbench.world import load_world
    from workbench.world.world2 import load_world2

    monkeypatch.chdir(tmp_path)
    assert main(["world", "--world", "demo2"]) == 0  # demo2_data, never over the shipped demo_data
    assert "wrote the demo2 world (seed 0)" in capsys.readouterr().out
    info = json.loads((tmp_path / "demo2_data" / "world.json").read_text())
    assert info["world"] == "demo2" and not (tmp_path / "demo_data").exists()
    back = load_world(tmp_path / "demo2_data")
    assert back.corpus.fingerprint == load_world2(0).corpus.fingerprint
    with pytest.raises(SystemExit):  # argparse lists the choices
        main(["world", "--world", "demo3"])
    assert "invalid choice: 'demo3' (choose from 'demo', 'demo2')" in capsys.readouterr().err.replace('"', "'")


def test_run_corpus_takes_a_demo_world_by_name(tmp_path):
    from workbench.store import Store

    db = str(tmp_path / "r.db")
    assert main(["--store", db, "run", "Where is Marl?", "--model", "tiny", "--max-steps", "1", "--max-new-tokens", "4",
                 "--corpus", "demo2"]) == 0
    store = Store(db)
    assert store.get_trace(store.list_runs()[0].id).meta["corpus"]["name"] == "demo2-world-0"


def test_attribute_command_prints_scores_and_writes_html(tmp_path, capsys):
    store = str(tmp_path / "r.db")
    assert main(["--store", store, "run", "Varnholt?", "--model", "tiny", "--max-steps", "1", "--max-new-tokens", "4"]) == 0
    from workbench.store import Store

    run_id = Store(store).list_runs()[0].id
    capsys.readouterr()
    assert main(["--store", store, "attribute", run_id, "--target", "step", "--html", str(tmp_path / "a.html")]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id} step 1" in out and "instruction" in out and "grounding:" in out
    assert (tmp_path / "a.html").read_text().startswith("<!doctype html>")
    assert main(["--store", store, "attribute", run_id, "--method", "ig"]) == 2
    assert "Did you mean 'layer_integrated_gradients'" in capsys.readouterr().err
    assert main(["--store", store, "attribute", run_id, "--method", "surrogate", "--granularity", "sentence",
                 "--set", "n_ablations=6", "--check-masks", "4"]) == 0
    out = capsys.readouterr()
    assert "surrogate · sentence features" in out.out and "by segment: instruction" in out.out
    assert "tokens recomputed" in out.out and "LDS" in out.out and "method" in out.err  # the progress bar
    assert main(["--store", store, "attribute", run_id, "--set", "n_ablation=6"]) == 2
    assert "--set takes NAME=VALUE with NAME one of" in capsys.readouterr().err
    assert main(["--store", store, "attribute", run_id, "--map"]) == 0
    out = capsys.readouterr().out
    assert "dependency map (feature_ablation" in out and "strongest (not its own thought): step 1:" in out


def test_run_with_dynamic_few_shot_records_the_examples_it_used(tmp_path):
    out = _cli("run", "When was Skelnandun founded?", "--model", "tiny", "--max-steps", "1", "--max-new-tokens", "4",
               "--dynamic-k", "2", "--json", env_store=tmp_path / "r.db")
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    used = trace["meta"]["examples_used"]
    assert len(used) == 2 and all(f"Question: {q}" in "".join(s["text"] for s in trace["steps"][0]["prompt_segments"])
                                  for q in used)
    assert any("founded" in q for q in used)  # the nearest train questions are about founding
