"""Temperature scaling: one scalar that makes softmax confidences match dev-set accuracy.

The dialogue manager compares intent confidence with a fallback threshold, so a confidence
of 0.8 should be right about 80% of the time (Guo et al., 2017).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


LOWEST, HIGHEST = 0.05, 20.0
"""The temperatures considered: anything beyond says more about the dev set than the model."""


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, candidates: int = 241) -> float:
    """The temperature minimising NLL of ``labels`` under ``softmax(logits / T)``.

    A search over ``candidates`` temperatures log-spaced from LOWEST to HIGHEST (2.5% apart),
    not gradient descent: an unbounded optimiser on a model that learnt little (logits nearly
    the same for every input) ran off and returned NaN, and a NaN confidence disables fallback.
    Labels of -1 (classes the model cannot predict) are ignored.
    """
    keep = labels >= 0
    logits, labels = logits[keep].float(), labels[keep]
    if len(labels) == 0:
        return 1.0
    temperatures = torch.logspace(math.log10(LOWEST), math.log10(HIGHEST), candidates)
    losses = torch.stack([F.cross_entropy(logits / t, labels) for t in temperatures])
    return float(temperatures[int(losses.nan_to_num(math.inf).argmin())])


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 10) -> float:
    """Gap between confidence and accuracy, averaged over equal-width confidence bins."""
    edges = torch.linspace(0, 1, bins + 1)
    error = torch.zeros(())
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.float().mean() * (confidence[inside].mean() - correct[inside].float().mean()).abs()
    return float(error)
