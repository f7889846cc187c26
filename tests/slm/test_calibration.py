import torch

from slm.calibration import HIGHEST, LOWEST, expected_calibration_error, fit_temperature


def test_temperature_softens_overconfident_logits():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (2000,))
    logits = torch.randn(2000, 4)
    logits[torch.arange(2000), labels] += 1.0  # right about 55% of the time ...
    logits = logits * 10  # ... but nearly always ~100% sure
    before_confidence, predicted = torch.softmax(logits, -1).max(-1)
    temperature = fit_temperature(logits, labels)
    after_confidence = torch.softmax(logits / temperature, -1).max(-1).values
    correct = predicted == labels
    assert temperature > 3
    assert expected_calibration_error(after_confidence, correct) < expected_calibration_error(before_confidence, correct) / 3


def test_unpredictable_labels_are_ignored():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    assert fit_temperature(logits, torch.tensor([-1, -1])) == 1.0


def test_a_model_that_learnt_little_gets_a_finite_temperature_within_bounds():
    # Near-identical logits for every input, as after three epochs of a tiny model: the
    # unbounded optimiser used before returned NaN here, and every confidence with it.
    logits = torch.tensor([
        [-0.741, 0.471, 0.485], [-0.637, 0.454, 0.457], [-0.609, 0.438, 0.371], [-0.647, 0.428, 0.385],
        [-0.338, 0.278, 0.150], [-0.641, 0.590, 0.319], [-0.604, 0.561, 0.362], [-0.633, 0.509, 0.400],
        [-0.578, 0.551, 0.240], [-0.587, 0.632, 0.358],
    ])
    labels = torch.tensor([2, 2, 2, 2, 0, 1, 1, 1, 1, 1])
    temperature = fit_temperature(logits, labels)
    assert LOWEST <= temperature <= HIGHEST
    nll = torch.nn.functional.cross_entropy
    assert nll(logits / temperature, labels) <= min(nll(logits / t, labels) for t in (LOWEST, 1.0, HIGHEST)) + 1e-6
