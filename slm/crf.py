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

    def _inference_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Transitions, start and end scores as float32 arrays, forbidden moves masked."""
        transitions, start = self._scores()
        return tuple(t.detach().float().cpu().numpy() for t in (transitions, start, self.end))  # type: ignore[return-value]

    @torch.no_grad()
    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """P(tag at position t = y | sequence), by forward-backward: (B, T, N).

        These are the confidences of tagging decisions under the whole CRF, not the
        per-position softmax of emissions (which ignores the transitions). Inference runs in
        numpy: its loops are over a dozen positions of tiny arrays, where torch's per-call
        overhead cost more than the arithmetic.
        """
        scores, live = _as_arrays(emissions, mask)
        transitions, start, end = self._inference_tables()
        B, T, N = scores.shape
        exp_transitions = torch.from_numpy(np.exp(transitions))
        alphas = np.empty((B, T, N), dtype=np.float32)
        alphas[:, 0] = start + scores[:, 0]
        for t in range(1, T):
            step = _np_log_matmul(alphas[:, t - 1], exp_transitions) + scores[:, t]
            alphas[:, t] = np.where(live[:, t, None], step, alphas[:, t - 1])
        betas = np.empty((B, T, N), dtype=np.float32)
        betas[:, T - 1] = end
        for t in range(T - 2, -1, -1):
            step = _np_log_matmul(scores[:, t + 1] + betas[:, t + 1], exp_transitions.T)
            betas[:, t] = np.where(live[:, t + 1, None], step, end)
        final = alphas[:, -1] + end  # alphas carry the last real position forward
        peak = final.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(final - peak).sum(axis=1, keepdims=True)) + peak
        return np.exp(alphas + betas - log_z[:, :, None])

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Viterbi: the best valid tag sequence for each row, trimmed to its length (numpy, as
        `marginals`)."""
        scores, live = _as_arrays(emissions, mask)
        transitions, start, end = self._inference_tables()
        B, T, N = scores.shape
        into = np.ascontiguousarray(transitions.T)  # (to, from): reductions run along contiguous rows
        score = start + scores[:, 0]  # (B, N)
        pointers = np.zeros((B, T, N), dtype=np.intp)
        for t in range(1, T):
            candidates = score[:, None, :] + into  # (B, N to, N from)
            pointers[:, t] = candidates.argmax(axis=2)
            score = np.where(live[:, t, None], candidates.max(axis=2) + scores[:, t], score)
        lengths = live.sum(axis=1).tolist()
        paths = []
        for row, (length, tag) in enumerate(zip(lengths, (score + end).argmax(axis=1).tolist())):
            path = [tag]
            for t in range(length - 1, 0, -1):
                tag = int(pointers[row, t, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths


def _as_arrays(emissions: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, N) float32 emissions and (B, T) bool mask as numpy arrays."""
    return emissions.detach().float().cpu().numpy(), mask.detach().cpu().numpy().astype(bool)


def _np_log_matmul(scores: np.ndarray, exp_transitions: torch.Tensor) -> np.ndarray:
    """`_log_matmul` for numpy scores; the product runs in torch, on the threads the process
    allows torch (numpy's BLAS would start threads of its own)."""
    peak = scores.max(axis=1, keepdims=True)
    product = (torch.from_numpy(np.exp(scores - peak)) @ exp_transitions).numpy()
    return np.log(product + 1e-30) + peak
