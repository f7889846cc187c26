"""Temperature scaling: one scalar that makes softmax confidences match dev-set accuracy.

The dialogue manager compares intent confidence with a fallback threshold, so a confidence
of 0.8 should be right about 80% of the time (Guo et al., 2017).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The temperature minimising NLL of ``labels`` under ``softmax(logits / T)``.

    Labels of -1 (classes the model cannot predict) are ignored.
    """
    keep = labels >= 0
    logits, labels = logits[keep].float(), labels[keep]
    if len(labels) == 0:
        return 1.0
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 10) -> float:
    """Gap between confidence and accuracy, averaged over equal-width confidence bins."""
    edges = torch.linspace(0, 1, bins + 1)
    error = torch.zeros(())
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.float().mean() * (confidence[inside].mean() - correct[inside].float().mean()).abs()
    return float(error)
