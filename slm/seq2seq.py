"""Seq2seq response generator: BiGRU encoder, GRU decoder, Luong attention, pointer-generator copy.

The decoder attends over the encoded context at every step and mixes two distributions:
generating a piece from the vocabulary, or copying a piece of the context with the attention
weights (See et al., 2017). Copying is what lets a reply carry an order number or a
restaurant name it has never seen in training. Decoding is greedy (batched) or beam search
with a length penalty and repeated n-gram blocking.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from slm.pieces import BOS_ID, EOS_ID, PAD_ID
from slm.settings import Seq2SeqConfig


@dataclass
class StepOutput:
    """One or more decoder steps: log-probabilities (B, T, V), attention (B, T, S), copy gate, state."""

    log_probs: torch.Tensor
    attention: torch.Tensor | None
    p_gen: torch.Tensor | None
    hidden: torch.Tensor


class Seq2Seq(nn.Module):
    """``forward((src, src_mask, tgt_in), tgt_out) -> (log_probs, loss)``."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        H, E, V = config.hidden, config.emb_dim, config.vocab_size
        self.embed = nn.Embedding(V, E, padding_idx=PAD_ID)
        self.encoder = nn.GRU(E, H // 2, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(H, H)
        self.decoder = nn.GRU(E, H, batch_first=True)
        self.attn_proj = nn.Linear(H, H, bias=False) if config.attention else None
        self.combine = nn.Linear(2 * H if config.attention else H, H)
        self.out = nn.Linear(H, V)
        self.gate = nn.Linear(2 * H + E, 1) if config.attention and config.copy else None
        self.drop = nn.Dropout(config.dropout)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory (B, S, H) and the decoder's initial state (1, B, H)."""
        lengths = src_mask.sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(self.embed(src)), lengths, batch_first=True, enforce_sorted=False)
        memory, _ = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True, total_length=src.size(1))  # (B, S, H)
        summary = (memory * src_mask.unsqueeze(-1)).sum(1) / lengths.to(memory.device).unsqueeze(-1)  # (B, H)
        return memory, torch.tanh(self.bridge(summary)).unsqueeze(0)

    def steps(self, memory: torch.Tensor, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor, hidden: torch.Tensor) -> StepOutput:
        """Run the decoder over ``tgt_in`` (B, T) from state ``hidden``."""
        emb = self.drop(self.embed(tgt_in))  # (B, T, E)
        states, hidden = self.decoder(emb, hidden)  # (B, T, H)
        attention = p_gen = None
        if self.attn_proj is not None:
            scores = self.attn_proj(states) @ memory.transpose(1, 2)  # (B, T, S)
            scores = scores.masked_fill(~src_mask.unsqueeze(1), float("-inf"))
            attention = torch.softmax(scores.float(), dim=-1)  # (B, T, S)
            context = attention.to(memory.dtype) @ memory  # (B, T, H)
            features = torch.tanh(self.combine(torch.cat([states, context], -1)))
        else:
            features = torch.tanh(self.combine(states))
        log_probs = torch.log_softmax(self.out(self.drop(features)).float(), dim=-1)  # (B, T, V)
        if self.gate is not None and attention is not None:
            p_gen = torch.sigmoid(self.gate(torch.cat([context, states, emb], -1)).float())  # (B, T, 1)
            copy = torch.zeros_like(log_probs).scatter_add_(2, src.unsqueeze(1).expand(-1, tgt_in.size(1), -1), attention)
            log_probs = torch.log((p_gen * log_probs.exp() + (1 - p_gen) * copy).clamp_min(1e-10))
        return StepOutput(log_probs, attention, p_gen, hidden)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], targets: torch.Tensor | None = None):
        src, src_mask, tgt_in = inputs
        memory, hidden = self.encode(src, src_mask)
        log_probs = self.steps(memory, src, src_mask, tgt_in, hidden).log_probs  # (B, T, V)
        if targets is None:
            return log_probs, None
        mask = targets != PAD_ID
        nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
        smooth = -log_probs.mean(-1)
        eps = self.config.label_smoothing
        loss = ((1 - eps) * nll + eps * smooth)[mask].mean()
        return log_probs, loss

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, src_mask: torch.Tensor, max_len: int | None = None) -> tuple[list[list[int]], list[float]]:
        """Most likely piece at each step, for a whole batch; returns ids and mean log-probability."""
        max_len = max_len or self.config.max_target
        memory, hidden = self.encode(src, src_mask)
        token = torch.full((src.size(0), 1), BOS_ID, dtype=torch.long, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        outputs: list[torch.Tensor] = []
        total = torch.zeros(src.size(0), device=src.device)
        count = torch.zeros(src.size(0), device=src.device)
        for _ in range(max_len):
            step = self.steps(memory, src, src_mask, token, hidden)
            hidden = step.hidden
            best, token = step.log_probs[:, -1].max(-1)  # (B,)
            total += torch.where(done, torch.zeros_like(best), best)
            count += (~done).float()
            outputs.append(torch.where(done, torch.full_like(token, PAD_ID), token))
            done |= token == EOS_ID
            token = token.unsqueeze(1)
            if done.all():
                break
        ids = torch.stack(outputs, 1).tolist()
        sequences = [[t for t in row[: row.index(EOS_ID)] if t != PAD_ID] if EOS_ID in row else [t for t in row if t != PAD_ID] for row in ids]
        return sequences, (total / count.clamp_min(1)).tolist()

    @torch.no_grad()
    def beam_search(
        self, src: torch.Tensor, src_mask: torch.Tensor, beam: int = 4, max_len: int | None = None, length_penalty: float = 0.6, no_repeat_ngram: int = 3
    ) -> tuple[list[int], float]:
        """Best hypothesis for one source (batch of 1): its ids and mean log-probability per piece.

        Hypotheses are ranked by total log-probability / ((5 + length) / 6) ** ``length_penalty``
        (GNMT); a piece that would repeat an n-gram of the hypothesis is never chosen.
        """
        max_len = max_len or self.config.max_target
        memory, hidden = self.encode(src, src_mask)
        hypotheses: list[tuple[list[int], float]] = [([], 0.0)]
        finished: list[tuple[list[int], float]] = []
        for _ in range(max_len):
            k = len(hypotheses)
            last = torch.tensor([[h[-1] if h else BOS_ID] for h, _ in hypotheses], device=src.device)
            step = self.steps(memory.expand(k, -1, -1), src.expand(k, -1), src_mask.expand(k, -1), last, hidden)
            log_probs = step.log_probs[:, -1].clone()  # (k, V)
            for row, (pieces, _) in enumerate(hypotheses):
                log_probs[row, _banned(pieces, no_repeat_ngram)] = float("-inf")
            scores = log_probs + torch.tensor([s for _, s in hypotheses], device=src.device).unsqueeze(1)
            top_scores, top = scores.view(-1).topk(min(2 * beam, scores.numel()))
            alive, rows = [], []
            for score, index in zip(top_scores.tolist(), top.tolist()):
                row, piece = divmod(index, log_probs.size(1))
                if score == float("-inf"):
                    break
                if piece == EOS_ID:
                    finished.append((hypotheses[row][0], score))
                else:
                    alive.append((hypotheses[row][0] + [piece], score))
                    rows.append(row)
                if len(alive) == beam:
                    break
            if len(finished) >= beam or not alive:
                break
            hypotheses, hidden = alive, step.hidden[:, rows]
        candidates = finished or hypotheses
        pieces, total = max(candidates, key=lambda c: c[1] / (((5 + len(c[0]) + 1) / 6) ** length_penalty))
        return pieces, total / (len(pieces) + 1)


def _banned(pieces: list[int], n: int) -> list[int]:
    """Pieces that would complete an n-gram already in ``pieces``."""
    if n <= 0 or len(pieces) < n - 1:
        return []
    prefix = tuple(pieces[len(pieces) - n + 1 :]) if n > 1 else ()
    return [pieces[i + n - 1] for i in range(len(pieces) - n + 1) if tuple(pieces[i : i + n - 1]) == prefix]
