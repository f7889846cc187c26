"""create_app(model) -> FastAPI: the NLU parse API (`POST /model/parse`) and `/health`.

Inference is plain torch and runs in a worker thread, so a parse never stalls the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, StringConstraints

from slm.nlu import NLUModel

MAX_MESSAGE_CHARS = 10_000

MessageText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)]


class ParseRequest(BaseModel):
    """A message to understand."""

    text: MessageText = Field(description="The user's message (1 to 10,000 characters).")


class EntityOut(BaseModel):
    entity: str
    value: str
    start: int
    end: int
    confidence: float


class IntentOut(BaseModel):
    name: str
    confidence: float


class ParseResponse(BaseModel):
    """Rasa-compatible parse result."""

    text: str
    intent: IntentOut
    intent_ranking: list[IntentOut]
    entities: list[EntityOut]
    model: str


def create_app(nlu: NLUModel) -> FastAPI:
    """The HTTP app serving ``nlu``."""
    app = FastAPI(title="slmbot", description="Intent and entity parsing with a model trained from scratch.")
    version = str(nlu.meta.get("training", {}).get("data_sha256", "unknown"))[:12]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": version}

    @app.post("/model/parse", response_model=ParseResponse)
    async def parse(request: ParseRequest) -> ParseResponse:
        result = await run_in_threadpool(nlu.parse, request.text)
        return ParseResponse(
            text=result.text,
            intent=IntentOut(name=result.intent, confidence=result.confidence),
            intent_ranking=[IntentOut(name=str(r["name"]), confidence=float(r["confidence"])) for r in result.ranking],
            entities=[EntityOut(**vars(e)) for e in result.entities],
            model=version,
        )

    return app
