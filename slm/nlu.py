"""A trained NLU model: tokenizer + character vocabulary + joint model + calibration.

This is what the dialogue manager calls: ``parse(text)`` gives the intent, a calibrated
confidence, the intent ranking and the entities with character offsets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from slm.checkpoint import load_checkpoint, save_checkpoint
from slm.errors import CheckpointError
from slm.examples import Span, bio_to_spans
from slm.features import Batch, CharVocab, make_batch
from slm.manifest import NLU_KIND
from slm.joint import JointConfig, JointModel
from slm.tokenizer import Encoding, Tokenizer

TOKENIZER_FILE = "tokenizer.model"


@dataclass
class Entity:
    """One recognised entity; ``confidence`` is the mean CRF marginal of its words' tags."""

    entity: str
    value: str
    start: int
    end: int
    confidence: float


@dataclass
class ParseResult:
    """What the NLU understood of one message."""

    text: str
    intent: str
    confidence: float
    ranking: list[dict[str, float | str]] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)

    @property
    def spans(self) -> tuple[Span, ...]:
        """Entities as character spans, for scoring against gold examples."""
        return tuple(Span(e.start, e.end, e.entity) for e in self.entities)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (Rasa-like keys)."""
        return asdict(self)


class NLUModel:
    """Everything needed to turn text into a `ParseResult`."""

    def __init__(
        self,
        model: JointModel,
        tokenizer: Tokenizer,
        chars: CharVocab,
        intents: list[str],
        tags: list[str],
        temperature: float = 1.0,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.model, self.tokenizer, self.chars = model, tokenizer, chars
        self.intents, self.tags = intents, tags
        self.temperature = temperature
        self.meta = meta or {}

    @property
    def device(self) -> torch.device:
        """Where the model's weights live."""
        return next(self.model.parameters()).device

    def featurize(self, texts: Sequence[str], encodings: Sequence[Encoding] | None = None) -> Batch:
        """Tensors for ``texts`` (pass ``encodings`` when already tokenized)."""
        encodings = encodings or [self.tokenizer.encode(t) for t in texts]
        config = self.model.config
        return make_batch(
            list(texts), list(encodings), self.chars, config.max_pieces, config.max_word_chars, self.tokenizer.pad_id,
            config.ngram_buckets,
        )

    @torch.no_grad()
    def logits(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Uncalibrated intent logits (N, n_intents), e.g. for fitting the temperature."""
        chunks = []
        for start in range(0, len(texts), batch_size):
            batch = self.featurize(texts[start : start + batch_size]).to(self.device)
            output, _ = self.model(batch)
            chunks.append(output.intent_logits.float().cpu())
        return torch.cat(chunks)

    @torch.inference_mode()
    def predict(self, texts: Sequence[str], batch_size: int = 256, top_k: int = 5) -> list[ParseResult]:
        """Parse many texts, ``batch_size`` at a time (the model must be in eval mode).

        Texts are batched by length, so a batch pads to similar sizes; results keep input order.
        """
        encodings = [self.tokenizer.encode(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        results: list[ParseResult | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = self.featurize([texts[i] for i in rows], [encodings[i] for i in rows]).to(self.device)
            output, _ = self.model(batch)
            probs = torch.softmax(output.intent_logits.float() / self.temperature, dim=-1)
            # Whole-batch calls converted to lists once: an operation per row would each retake the GIL.
            top_values, top_indices = (t.tolist() for t in probs.topk(min(top_k, len(self.intents)), dim=-1))
            paths = self.model.crf.decode(output.tag_emissions, batch.word_mask)
            # Marginals only give entity confidences: skip them when nothing was tagged.
            tagged = any(any(path) for path in paths)
            tag_probs = self.model.crf.marginals(output.tag_emissions, batch.word_mask) if tagged else None
            for row, (index, path) in enumerate(zip(rows, paths)):
                marginals = tag_probs[row] if tag_probs is not None else None
                ranking = [{"name": self.intents[i], "confidence": v} for v, i in zip(top_values[row], top_indices[row])]
                results[index] = self._result(texts[index], encodings[index], path, ranking, marginals)
        return results  # type: ignore[return-value]

    def parse(self, text: str) -> ParseResult:
        """Parse one message."""
        return self.predict([text])[0]

    def _result(
        self, text: str, encoding: Encoding, path: list[int], ranking: list[dict[str, float | str]], tag_probs: np.ndarray | None
    ) -> ParseResult:
        n = min(len(path), len(encoding.words))
        tags = [self.tags[t] for t in path[:n]]
        entities = []
        for span in bio_to_spans(tags, encoding.words[:n]):
            inside = [i for i, (s, e) in enumerate(encoding.words[:n]) if s >= span.start and e <= span.end]
            assert tag_probs is not None  # an entity means a tagged path, so marginals were computed
            confidence = float(np.mean([tag_probs[i, path[i]] for i in inside]))
            entities.append(Entity(span.label, text[span.start : span.end], span.start, span.end, confidence))
        return ParseResult(text, str(ranking[0]["name"]), float(ranking[0]["confidence"]), ranking, entities)

    def save(self, directory: Path) -> None:
        """Write a checkpoint directory (see `slm.checkpoint`)."""
        meta = {
            "config": asdict(self.model.config),
            "labels": {"intents": self.intents, "tags": self.tags, "chars": self.chars.chars},
            "temperature": self.temperature,
            **self.meta,
        }
        save_checkpoint(Path(directory), NLU_KIND, self.model.state_dict(), meta, {TOKENIZER_FILE: self.tokenizer.model_proto})

    @classmethod
    def load(cls, directory: Path, device: str | torch.device = "cpu") -> NLUModel:
        """Load and verify a checkpoint written by `save`.

        Raises:
            CheckpointError: the directory is missing, incomplete, corrupt or not an NLU model.
        """
        state, manifest = load_checkpoint(Path(directory), NLU_KIND)
        labels = manifest["labels"]
        model = JointModel(JointConfig(**manifest["config"]), labels["tags"])
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise CheckpointError(f"{directory}: weights do not fit the saved model config ({error})") from None
        model.to(device).eval()
        tokenizer = Tokenizer.load(Path(directory) / TOKENIZER_FILE)
        meta = {k: v for k, v in manifest.items() if k not in ("config", "labels", "temperature", "files", "format", "kind")}
        return cls(model, tokenizer, CharVocab(labels["chars"]), labels["intents"], labels["tags"], manifest["temperature"], meta)
