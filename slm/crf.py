"""Linear-chain CRF over BIO tags whose transitions forbid invalid sequences (O -> I-x)."""

from __future__ import annotations

import torch
from torch import nn

FORBIDDEN = -1e4


def bio_allowed(tags: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Which transitions (from, to) and which first tags are valid BIO.

    ``I-x`` may only follow ``B-x`` or ``I-x``, and may not start a sequence.
    """
    n = len(tags)
    allowed = torch.ones(n, n, dtype=torch.bool)
    first = torch.ones(n, dtype=torch.bool)
    for j, tag in enumerate(tags):
        if not tag.startswith("I-"):
            continue
        first[j] = False
        for i, before in enumerate(tags):
            allowed[i, j] = before[2:] == tag[2:] and before[:2] in ("B-", "I-")
    return allowed, first


class CRF(nn.Module):
    """Scores whole tag sequences; decoding can only return valid BIO."""

    def __init__(self, tags: list[str]) -> None:
        super().__init__()
        n = len(tags)
        self.transitions = nn.Parameter(torch.zeros(n, n))  # (from, to)
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        allowed, first = bio_allowed(tags)
        self.register_buffer("forbidden", ~allowed, persistent=False)
        self.register_buffer("forbidden_first", ~first, persistent=False)

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        transitions = self.transitions.masked_fill(self.forbidden, FORBIDDEN)
        start = self.start.masked_fill(self.forbidden_first, FORBIDDEN)
        return transitions, start

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the gold ``tags`` per sequence.

        Args:
            emissions: (B, T, N) tag scores; sequences are left-aligned.
            tags: (B, T) gold tag ids (anything where ``mask`` is False).
            mask: (B, T) True on real tokens; every sequence has at least one.
        """
        emissions = emissions.float()
        transitions, start = self._scores()
        B, T, _ = emissions.shape
        batch = torch.arange(B, device=emissions.device)
        gold = start[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]  # (B,)
        alpha = start + emissions[:, 0]  # (B, N)
        exp_transitions = transitions.exp()
        for t in range(1, T):
            step = mask[:, t]
            gold = gold + step * (transitions[tags[:, t - 1], tags[:, t]] + emissions[batch, t, tags[:, t]])
            # logsumexp over the previous tag as a matmul in probability space: (B, N) @ (N, N)
            peak = alpha.max(dim=1, keepdim=True).values
            summed = torch.log((alpha - peak).exp() @ exp_transitions + 1e-30) + peak
            alpha = torch.where(step.unsqueeze(1), summed + emissions[:, t], alpha)
        last = tags[batch, mask.sum(1) - 1]
        gold = gold + self.end[last]
        return torch.logsumexp(alpha + self.end, dim=1) - gold

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Viterbi: the best valid tag sequence for each row, trimmed to its length."""
        emissions = emissions.float()
        transitions, start = self._scores()
        score = start + emissions[:, 0]  # (B, N)
        history = []
        for t in range(1, emissions.shape[1]):
            candidates = score.unsqueeze(2) + transitions  # (B, N, N)
            best, backpointer = candidates.max(dim=1)
            step = mask[:, t].unsqueeze(1)
            score = torch.where(step, best + emissions[:, t], score)
            history.append(backpointer)
        score = score + self.end
        lengths = mask.sum(1).tolist()
        best_last = score.argmax(1).tolist()
        pointers = torch.stack(history, dim=1).tolist() if history else [[] for _ in lengths]  # (B, T-1, N)
        paths = []
        for row, (length, tag) in enumerate(zip(lengths, best_last)):
            path = [tag]
            for backpointer in reversed(pointers[row][: length - 1]):
                tag = backpointer[tag]
                path.append(tag)
            paths.append(path[::-1])
        return paths
