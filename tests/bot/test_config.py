import pytest

from bot.config import ConfigError, load_config
from slm.datasets import load_examples
from tests.conftest import ROOT


def test_the_example_project_config_and_data_load():
    config = load_config(ROOT / "config.toml")
    assert config.nlu.data == ROOT / "intents"
    assert config.nlu_model_dir == ROOT / "models" / "nlu"
    examples = load_examples(config.nlu.data)
    assert len({e.intent for e in examples}) >= 15
    assert len({s.label for e in examples for s in e.spans}) >= 4


def test_missing_file_gives_defaults(tmp_path):
    config = load_config(tmp_path / "config.toml")
    assert config.server.port == 8000
    assert config.nlu.training.seed == 0


@pytest.mark.parametrize(
    "content, message",
    [
        ("[nlu.model]\nd_modl = 3\n", r"\[nlu.model\]: unknown setting 'd_modl'"),
        ("[nlu.training]\nepochs = 'ten'\n", r"'epochs' must be int, got 'ten'"),
        ("[nlu.model]\nrecurrent = 1\n", r"'recurrent' must be bool"),
        ("[server\nport = 1\n", r"config.toml: "),
        ("[server]\nworker_threads = 0\n", r"\[server\] worker_threads must be 1 or more"),
        ("[nlu.model]\nentity_swap = 1.5\n", r"config.toml: \[nlu.model\]: entity_swap is a probability"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path, content, message):
    path = tmp_path / "config.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_retraining_keeps_a_moving_average_unless_told_otherwise(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[retrain]\nepochs = 3\n")
    config = load_config(path)
    assert (config.retrain.epochs, config.retrain.ema, config.nlu.training.ema) == (3, 0.99, 0.0)
    path.write_text("[retrain]\nema = 0.0\n")
    assert load_config(path).retrain.ema == 0.0
