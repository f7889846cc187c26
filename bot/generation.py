"""Generated replies inside the bot: build the context like the training pairs, generate, gate.

The generator is plain torch, so it runs in a worker thread like the NLU model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from bot.safety import SafetyGate
from slm.dialogue_corpora import render_context

if TYPE_CHECKING:  # torch: loaded only when the project has the generator on
    from slm.generator import Generator


@dataclass(frozen=True)
class GatedReply:
    """A generated reply with its score and the gate's verdict (``rejected`` says why, None if it passed)."""

    text: str
    score: float
    rejected: str | None

    @property
    def passed(self) -> bool:
        return self.rejected is None


class ReplyGenerator:
    """Generator + safety gate + decoding settings, as the dialogue manager uses them."""

    def __init__(
        self, generator: Generator, gate: SafetyGate, version: str, beam: int = 1, length_penalty: float = 1.0
    ) -> None:
        self.generator, self.gate, self.version = generator, gate, version
        self.beam, self.length_penalty = beam, length_penalty

    def reply(self, turns: Sequence[tuple[str, str]], facts: Sequence[str]) -> GatedReply:
        """Generate a reply to the conversation so far (newest turn last) and check it."""
        context = render_context(turns, facts)
        generated = self.generator.generate([context], beam=self.beam, length_penalty=self.length_penalty)[0]
        return GatedReply(generated.text, generated.score, self.gate.check(generated.text, generated.score, context))
