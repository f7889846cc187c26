import torch

from slm.calibration import expected_calibration_error, fit_temperature


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
