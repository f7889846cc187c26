"""The model shapes and training settings a bot author sets in config.toml.

They live apart from the models so that reading config.toml does not import torch: a serving
worker whose parsing runs in a child process never loads it (importing torch alone costs a
process ~280 MB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(kw_only=True)
class EncoderShape:
    """The encoder's shape and regularisation: what a bot author sets in config.toml."""

    d_model: int = 192
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 768
    dropout: float = 0.2
    piece_dropout: float = 0.1
    recurrent: bool = True

    def shape(self) -> dict[str, int | float | bool]:
        """Just the `EncoderShape` fields (for building an `EncoderConfig` from a subclass)."""
        return {f.name: getattr(self, f.name) for f in fields(EncoderShape)}


@dataclass(kw_only=True)
class ModelSizes(EncoderShape):
    """``[nlu.model]`` in config.toml: the encoder's shape plus vocabulary and slot options."""

    vocab_size: int = 6000
    intent_slot_mask: bool = False
    """Restrict each intent to the entity types seen with it in training (its slot schema)."""
    slot_schema_on_dev: bool = True
    """Without ``intent_slot_mask``: after training, decode with the slot schema anyway when
    that scores better on dev (it does on SNIPS, whose intents have disjoint entity types)."""
    entity_swap: float = 0.25
    """In training, the chance that an entity takes another value of its type for an epoch
    (`slm.augment`): the slot tagger learns contexts, not the values it was shown."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.entity_swap <= 1.0:
            raise ValueError(f"entity_swap is a probability, between 0 and 1; got {self.entity_swap}")


@dataclass
class TrainSettings:
    """Optimisation settings shared by every model we train."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    patience: int = 5
    seed: int = 0
    device: str = "auto"
    grad_clip: float = 1.0
    ema: float = 0.0  # > 0: evaluate and keep a moving average of the weights, at most this decay per step
    min_steps: int = 0
    """> 0: a data set too small to fill this many optimizer steps in ``epochs`` trains for more
    epochs, and waits proportionally longer for an improvement: the learning rate decays over
    steps, and on ATIS (70 steps an epoch) 20 epochs ended the schedule while dev still rose."""

    def planned(self, steps_per_epoch: int) -> tuple[int, int]:
        """The epochs and the patience a run with ``steps_per_epoch`` optimizer steps an epoch gets."""
        if self.min_steps <= steps_per_epoch * self.epochs:
            return self.epochs, self.patience
        epochs = math.ceil(self.min_steps / steps_per_epoch)
        return epochs, math.ceil(self.patience * epochs / self.epochs)


@dataclass
class Seq2SeqConfig:
    """Model shape; ``attention=False`` is the ablation (no attention, hence no copy)."""

    vocab_size: int = 4000
    emb_dim: int = 128
    hidden: int = 256
    dropout: float = 0.2
    attention: bool = True
    copy: bool = True
    label_smoothing: float = 0.1
    max_source: int = 200
    max_target: int = 60
    exemplars: bool = True  # add the reply of the nearest training context to the context (retrieve-and-edit)
