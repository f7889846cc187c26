"""The retrieval baseline: answer with the reply of the most similar training context (TF-IDF, cosine)."""

from __future__ import annotations

from typing import Sequence

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from slm.dialogue_corpora import DialoguePair


class NearestContext:
    """Fit on training pairs; `reply` returns the response whose context is closest to the query."""

    def __init__(self, train: Sequence[DialoguePair]) -> None:
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        self.matrix = normalize(self.vectorizer.fit_transform([p.context for p in train]))
        self.responses = [p.response for p in train]

    def reply(self, contexts: Sequence[str]) -> list[str]:
        queries = normalize(self.vectorizer.transform(list(contexts)))
        best = (queries @ self.matrix.T).toarray().argmax(axis=1)
        return [self.responses[i] for i in best]
