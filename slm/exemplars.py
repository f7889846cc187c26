"""Nearest training context by TF-IDF cosine: the retrieval baseline, and the generator's exemplars.

Retrieve-and-edit: the generator sees the reply of the most similar training context as one
more fact, so it can keep a phrasing that worked while its copy mechanism puts in this
conversation's values. The index is small (sparse word unigrams and bigrams) and rebuilt from
the stored training pairs when a generator loads.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from typing import Sequence

import torch

TOKEN = re.compile(r"\w+|[^\w\s]")
CHUNK = 512


def _terms(text: str) -> list[str]:
    words = TOKEN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


class ExemplarIndex:
    """TF-IDF (sublinear tf, smoothed idf, L2-normalised) over training contexts."""

    def __init__(self, contexts: Sequence[str], responses: Sequence[str]) -> None:
        self.contexts, self.responses = list(contexts), list(responses)
        counts = [Counter(_terms(c)) for c in self.contexts]
        documents = Counter(term for c in counts for term in c)
        self.vocab = {term: i for i, term in enumerate(sorted(documents))}
        n = len(self.contexts)
        self.idf = torch.tensor([math.log((1 + n) / (1 + documents[t])) + 1 for t in sorted(documents)])
        self.matrix = self._vectors(counts)  # (N, V) sparse

    def _vectors(self, counts: list[Counter[str]]) -> torch.Tensor:
        rows, cols, values = [], [], []
        for row, count in enumerate(counts):
            for term, tf in count.items():
                if term in self.vocab:
                    rows.append(row)
                    cols.append(self.vocab[term])
                    values.append(1 + math.log(tf))
        dense_idf = self.idf[torch.tensor(cols, dtype=torch.long)] if cols else torch.zeros(0)
        weights = torch.tensor(values) * dense_idf
        norms = torch.zeros(len(counts)).index_add_(0, torch.tensor(rows, dtype=torch.long), weights**2).sqrt().clamp_min(1e-12)
        weights = weights / norms[torch.tensor(rows, dtype=torch.long)] if rows else weights
        indices = torch.tensor([rows, cols], dtype=torch.long).view(2, -1)
        return torch.sparse_coo_tensor(indices, weights, (len(counts), len(self.vocab)), check_invariants=False).coalesce()

    def nearest(self, queries: Sequence[str], exclude_self: bool = False) -> list[int]:
        """Index of the most similar training context for each query.

        ``exclude_self``: the queries are the training contexts themselves (in order), and each
        must not find itself (training pairs get a neighbour's reply, as unseen contexts will).
        """
        found: list[int] = []
        for start in range(0, len(queries), CHUNK):
            chunk = queries[start : start + CHUNK]
            vectors = self._vectors([Counter(_terms(q)) for q in chunk])
            with warnings.catch_warnings():  # torch calls its sparse CSR path "beta"; the result is exact
                warnings.simplefilter("ignore", UserWarning)
                scores = torch.sparse.mm(vectors, self.matrix.t()).to_dense()  # (chunk, N)
            if exclude_self:
                scores[torch.arange(len(chunk)), torch.arange(start, start + len(chunk))] = float("-inf")
            found += scores.argmax(1).tolist()
        return found

    def reply(self, queries: Sequence[str]) -> list[str]:
        """The retrieval baseline: the reply of the nearest training context."""
        return [self.responses[i] for i in self.nearest(queries)]

    def augment(self, contexts: Sequence[str], exclude_self: bool = False) -> list[str]:
        """Each context with its nearest training reply as a fact before the newest turn."""
        augmented = []
        for context, index in zip(contexts, self.nearest(contexts, exclude_self)):
            lines = context.split("\n")
            lines.insert(max(0, len(lines) - 1), f"fact: similar reply {self.responses[index]}")
            augmented.append("\n".join(lines))
        return augmented
