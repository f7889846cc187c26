"""Linear-chain CRF over BIO tags whose transitions forbid invalid sequences (O -> I-x)."""

from __future__ import annotations

import numpy as np
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

    def _inference_tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transitions, start and end scores as float32, forbidden moves masked."""
        transitions, start = self._scores()
        return transitions.detach().float(), start.detach().float(), self.end.detach().float()

    @torch.no_grad()
    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """P(tag at position t = y | sequence), by forward-backward: (B, T, N).

        These are the confidences of tagging decisions under the whole CRF, not the
        per-position softmax of emissions (which ignores the transitions).
        """
        return _forward_backward(emissions.detach().float(), mask.bool(), *self._inference_tables()).cpu().numpy()

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Viterbi: the best valid tag sequence for each row, trimmed to its length."""
        transitions, start, end = self._inference_tables()
        score, pointers = _viterbi(emissions.detach().float(), mask.bool(), transitions, start)
        pointers_of = pointers.cpu().numpy()
        lengths = mask.sum(1).tolist()
        paths = []
        for row, (length, tag) in enumerate(zip(lengths, (score + end).argmax(1).tolist())):
            path = [tag]
            for t in range(length - 1, 0, -1):
                tag = int(pointers_of[row, t, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths


# TorchScript's default (profiling) executor re-specialises a graph for the shapes it meets, and
# every batch size and message length is a new one (with these functions and the model's forward
# pass traced as well, 1,500 varied batches left a process 47 MB larger than eager code, at no
# gain in speed). The plain executor runs graphs as they are; the setting is process-wide.
torch._C._jit_set_profiling_executor(False)

# Inference loops run as TorchScript: a dozen positions of tiny tensors, where eager torch paid
# its per-call overhead and gave up and retook the GIL around every operation, and numpy (used
# before) did so dozens of times per call too. A server parses in a thread beside its event loop,
# and each retake can wait up to 5 ms for the loop; a scripted function gives the GIL up once.


@torch.jit.script
def _viterbi(scores: torch.Tensor, live: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The best score ending in each tag (B, N) and the back-pointers (B, T, N) of Viterbi."""
    B, T, N = scores.shape
    into = transitions.t().contiguous()  # (to, from)
    score = start + scores[:, 0]  # (B, N)
    pointers = torch.zeros((B, T, N), dtype=torch.long, device=scores.device)
    for t in range(1, T):
        best, before = (score.unsqueeze(1) + into).max(dim=2)  # over the tag before
        pointers[:, t] = before
        score = torch.where(live[:, t].unsqueeze(1), best + scores[:, t], score)
    return score, pointers


@torch.jit.script
def _forward_backward(
    scores: torch.Tensor, live: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    """Posterior marginals (B, T, N); positions past a row's length read as its last one."""
    B, T, N = scores.shape
    exp_transitions = transitions.exp()
    alphas = torch.empty_like(scores)
    alphas[:, 0] = start + scores[:, 0]
    for t in range(1, T):
        step = _log_matmul(alphas[:, t - 1], exp_transitions) + scores[:, t]
        alphas[:, t] = torch.where(live[:, t].unsqueeze(1), step, alphas[:, t - 1])
    betas = torch.empty_like(scores)
    betas[:, T - 1] = end
    for t in range(T - 2, -1, -1):
        step = _log_matmul(scores[:, t + 1] + betas[:, t + 1], exp_transitions.t())
        betas[:, t] = torch.where(live[:, t + 1].unsqueeze(1), step, end.expand(B, N))
    log_z = torch.logsumexp(alphas[:, -1] + end, dim=1)  # alphas carry the last real position forward
    return torch.exp(alphas + betas - log_z[:, None, None])
