"""The slmbot CLI, run for real on a tiny fixture (typer's runner, real training and files)."""

import json
import re

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import FIXTURES, ROOT

runner = CliRunner()
TINY_CONFIG = str(FIXTURES / "tiny.toml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model"
    result = runner.invoke(
        app,
        ["nlu", "train", "--train", str(FIXTURES / "tiny.jsonl"), "--out", str(out), "--config", TINY_CONFIG, "--seed", "3"],
    )
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_model_with_metadata(trained):
    manifest = json.loads((trained / "checkpoint.json").read_text())
    assert manifest["kind"] == "joint.v1"
    assert manifest["training"]["settings"]["seed"] == 3
    assert manifest["training"]["epochs_run"] == 3
    assert set(manifest["metrics"]["dev"]) >= {"intent_accuracy", "slot_f1", "frame_accuracy"}


def test_eval_json_has_the_documented_keys(trained):
    result = runner.invoke(app, ["nlu", "eval", "--model", str(trained), "--data", str(FIXTURES / "tiny.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert {"intent_accuracy", "slot_f1", "frame_accuracy", "n"} <= set(scores)
    assert scores["n"] == 48
    assert "oos_recall" not in scores


def test_eval_reports_oos_numbers_when_asked(trained):
    """In-scope accuracy and OOS recall split the overall intent accuracy by gold label."""
    args = ["nlu", "eval", "--model", str(trained), "--data", str(FIXTURES / "tiny.jsonl"), "--json"]
    overall = json.loads(runner.invoke(app, args).stdout)
    scores = json.loads(runner.invoke(app, [*args, "--oos-label", "greet"]).stdout)
    n_oos = 6  # greetings in tiny.jsonl, standing in for out-of-scope messages
    combined = (48 - n_oos) * scores["in_scope_accuracy"] + n_oos * scores["oos_recall"]
    assert combined == pytest.approx(48 * overall["intent_accuracy"])


def test_parse_prints_intent_confidence_and_entities(trained):
    result = runner.invoke(app, ["nlu", "parse", "--model", str(trained), "where is order B-2001"])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert parsed["intent"] in {"order_status", "product_availability", "greet"}
    assert 0.0 < parsed["confidence"] <= 1.0
    assert abs(sum(r["confidence"] for r in parsed["ranking"]) - 1.0) < 1e-4
    for entity in parsed["entities"]:
        assert parsed["text"][entity["start"] : entity["end"]] == entity["value"]


def test_bad_data_fails_before_training_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greet"}\n{"text": "", "intent": "greet"}\n')
    result = runner.invoke(app, ["nlu", "train", "--train", str(bad), "--out", str(tmp_path / "m"), "--config", TINY_CONFIG])
    assert result.exit_code == 2
    assert f"{bad}:2: 'text' must be a non-empty string" in result.output
    assert not (tmp_path / "m").exists()


def test_corrupt_model_is_refused_with_a_reason(trained, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in trained.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "weights.pt").write_bytes((broken / "weights.pt").read_bytes()[:-10])
    result = runner.invoke(app, ["nlu", "parse", "--model", str(broken), "hi"])
    assert result.exit_code == 2
    assert "truncated" in result.output


def test_pretrain_then_fine_tune(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(json.loads(line)["text"] for line in (FIXTURES / "tiny.jsonl").read_text().splitlines()))
    encoder = tmp_path / "encoder"
    result = runner.invoke(app, ["nlu", "pretrain", "--text", str(texts), "--out", str(encoder), "--config", TINY_CONFIG])
    assert result.exit_code == 0, result.output
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        ["nlu", "train", "--train", str(FIXTURES / "tiny.jsonl"), "--out", str(out), "--init", str(encoder), "--config", TINY_CONFIG],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "checkpoint.json").read_text())
    assert manifest["training"]["initialised_from"] == str(encoder)
    assert (out / "tokenizer.model").read_bytes() == (encoder / "tokenizer.model").read_bytes()


def test_run_without_a_model_says_to_train(tmp_path):
    assert runner.invoke(app, ["init", str(tmp_path / "bot")]).exit_code == 0
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "bot" / "config.toml")])
    assert result.exit_code == 2
    assert "run `slmbot train` first" in result.output


def test_check_reports_every_problem_and_exits_1(tmp_path):
    assert runner.invoke(app, ["init", str(tmp_path / "bot")]).exit_code == 0
    domain = tmp_path / "bot" / "dialogues" / "domain.yml"
    domain.write_text(domain.read_text().replace("prompt: utter_ask_guests", "prompt: utter_ask_gests"))
    result = runner.invoke(app, ["check", "--config", str(tmp_path / "bot" / "config.toml")])
    assert result.exit_code == 1
    assert "domain.yml:" in result.output and "undefined response 'utter_ask_gests' (did you mean 'utter_ask_guests'?)" in result.output


def test_init_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 2 and "not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_init_creates_a_project_that_trains_passes_its_tests_and_records_the_model(tmp_path):
    project = tmp_path / "bot"
    assert runner.invoke(app, ["init", str(project)]).exit_code == 0
    config = str(project / "config.toml")
    assert runner.invoke(app, ["check", "--config", config]).exit_code == 0
    trained = runner.invoke(app, ["train", "--config", config, "--device", "cpu"])
    assert trained.exit_code == 0, trained.output
    assert (project / "models" / "nlu" / "checkpoint.json").is_file()
    from bot.storage.store import ConversationStore

    models = ConversationStore(f"sqlite:///{project}/data/slmbot.db").models("nlu")
    assert len(models) == 1 and models[0].active and models[0].data_hash
    assert (project / "models" / "registry" / "nlu" / models[0].version / "checkpoint.json").is_file()
    tested = runner.invoke(app, ["test", "--config", config, "--path", str(project / "tests" / "conversations")])
    assert tested.exit_code == 0, tested.output
    assert "2/2 conversation tests passed" in tested.output

    listed = runner.invoke(app, ["models", "list", "--config", config, "--json"])
    assert [(m["version"], m["live"]) for m in json.loads(listed.stdout)] == [(models[0].version, True)]
    rolled = runner.invoke(app, ["models", "rollback", "--config", config])
    assert rolled.exit_code == 2 and "nothing to roll back to" in rolled.output
    purged = runner.invoke(app, ["logs", "purge", "--config", config])
    assert purged.exit_code == 2 and "[privacy] retention_days" in purged.output  # brackets are not eaten as markup
    assert runner.invoke(app, ["logs", "purge", "--config", config, "--days", "30"]).exit_code == 0
    exported = runner.invoke(app, ["export", "--config", config, "--out", str(tmp_path / "logged.jsonl")])
    assert exported.exit_code == 0 and (tmp_path / "logged.jsonl").exists()

    # Cron-friendly retraining: the first run trains and gates (exit 3 when rejected), a second
    # run on the same data does nothing and exits 0.
    retrained = runner.invoke(app, ["retrain", "--config", config, "--device", "cpu", "--json"])
    report = json.loads(retrained.stdout.strip().splitlines()[-1])
    assert retrained.exit_code == (0 if report["promoted"] else 3), retrained.output
    assert (project / "models" / "reports" / "last-retrain.json").is_file()
    again = runner.invoke(app, ["retrain", "--config", config, "--device", "cpu", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout.strip().splitlines()[-1])["skipped"] is True
    assert runner.invoke(app, ["retrain", "--config", config, "--every", "soon"]).exit_code == 2


def test_example_bot_passes_all_its_conversation_tests(example_model):
    config = str(ROOT / "config.toml")
    result = runner.invoke(app, ["test", "--config", config, "--model", str(example_model), "--path", str(ROOT / "tests" / "conversations")])
    assert result.exit_code == 0, result.output
    assert "32/32 conversation tests passed" in result.output


def test_a_failing_conversation_test_exits_1_and_shows_the_transcript(example_model, tmp_path):
    (tmp_path / "t.yml").write_text("- test: wrong expectation\n  steps:\n    - user: hi\n      bot: [utter_goodbye]\n")
    result = runner.invoke(app, ["test", "--config", str(ROOT / "config.toml"), "--model", str(example_model), "--path", str(tmp_path)])
    assert result.exit_code == 1
    assert "expected response utter_goodbye, got utter_greet" in result.output
    assert "user: hi" in result.output


def test_shell_chats_shows_buttons_and_debug_parse(example_model, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/shell.db")
    args = ["shell", "--config", str(ROOT / "config.toml"), "--model", str(example_model), "--debug", "--sender", "tester"]
    result = runner.invoke(app, args, input="hi\n1\n/exit\n")
    assert result.exit_code == 0, result.output
    assert re.search(r"greet (0\.9\d|1\.00)", result.output)  # the debug parse: intent and confidence
    assert "[1] Track an order" in result.output
    assert "order_status 1.00" in result.output  # "1" pressed the first button: /order_status
    assert "order number" in result.output


def test_gen_train_eval_generate_on_jsonl(tmp_path):
    data = str(FIXTURES / "tiny_dialogues.jsonl")
    out = tmp_path / "gen"
    trained = runner.invoke(app, ["gen", "train", "--train", data, "--out", str(out), "--config", TINY_CONFIG])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["gen", "eval", "--model", str(out), "--data", data, "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    scores = json.loads(evaluated.stdout)
    assert set(scores) == {"bleu", "value_accuracy", "wrong_value_rate", "n"} and scores["n"] == 12
    generated = runner.invoke(app, ["gen", "generate", "--model", str(out), "fact: order A-1042 ; status shipped\\nuser: where is my order?"])
    assert generated.exit_code == 0, generated.output
    assert set(json.loads(generated.stdout)) == {"text", "score"}


def test_gen_train_rejects_a_bad_jsonl_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "user: hi", "response": "hello"}\n{"context": "user: hi"}\n')
    result = runner.invoke(app, ["gen", "train", "--train", str(bad), "--out", str(tmp_path / "g"), "--config", TINY_CONFIG])
    assert result.exit_code == 2 and f"{bad}:2: each line needs non-empty 'context' and 'response' strings" in result.output


@pytest.mark.slow
def test_train_with_the_generator_enabled_trains_and_records_both_models(tmp_path):
    project = tmp_path / "bot"
    assert runner.invoke(app, ["init", str(project)]).exit_code == 0
    config = project / "config.toml"
    small = (FIXTURES / "tiny.toml").read_text().split("[generator.model]", 1)[1]
    config.write_text(config.read_text() + "\n[generator]\nenabled = true\n\n[generator.model]" + small)
    trained = runner.invoke(app, ["train", "--config", str(config), "--device", "cpu"])
    assert trained.exit_code == 0, trained.output
    assert (project / "models" / "generator" / "checkpoint.json").is_file()
    from bot.storage.store import ConversationStore

    kinds = {m.kind for m in ConversationStore(f"sqlite:///{project}/data/slmbot.db").models()}
    assert kinds == {"nlu", "generator"}
    tested = runner.invoke(app, ["test", "--config", str(config), "--path", str(project / "tests" / "conversations")])
    assert tested.exit_code == 0, tested.output
