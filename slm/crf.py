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


def _log_matmul(scores: torch.Tensor, exp_transitions: torch.Tensor) -> torch.Tensor:
    """logsumexp_i(scores[b, i] + log T[i, j]) as a matmul in probability space: (B, N) @ (N, N).

    Much cheaper than materialising (B, N, N); shifting by the row maximum keeps it stable.
    """
    peak = scores.max(dim=1, keepdim=True).values
    return torch.log((scores - peak).exp() @ exp_transitions + 1e-30) + peak


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
            alpha = torch.where(step.unsqueeze(1), _log_matmul(alpha, exp_transitions) + emissions[:, t], alpha)
        last = tags[batch, mask.sum(1) - 1]
        gold = gold + self.end[last]
        return torch.logsumexp(alpha + self.end, dim=1) - gold

    @torch.no_grad()
    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """P(tag at position t = y | sequence), by forward-backward: (B, T, N).

        These are the confidences of tagging decisions under the whole CRF, not the
        per-position softmax of emissions (which ignores the transitions).
        """
        emissions = emissions.float()
        transitions, start = self._scores()
        B, T, N = emissions.shape
        exp_transitions = transitions.exp()
        alphas = [start + emissions[:, 0]]  # each (B, N)
        for t in range(1, T):
            step = _log_matmul(alphas[-1], exp_transitions) + emissions[:, t]
            alphas.append(torch.where(mask[:, t].unsqueeze(1), step, alphas[-1]))
        end = self.end.expand(B, N)
        betas = [end] * T
        for t in range(T - 2, -1, -1):
            step = _log_matmul(emissions[:, t + 1] + betas[t + 1], exp_transitions.T)
            betas[t] = torch.where(mask[:, t + 1].unsqueeze(1), step, end)
        log_z = torch.logsumexp(alphas[-1] + end, dim=1)  # alphas carry the last real position forward
        return (torch.stack(alphas, 1) + torch.stack(betas, 1) - log_z[:, None, None]).exp()

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
