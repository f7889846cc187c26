"""``/health`` and ``POST /model/parse`` (Rasa-compatible NLU result)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from bot.api.deps import RuntimeDep
from bot.api.schemas import MessageText
from bot.metrics import exposition
from bot.storage.store import StorageUnavailable

router = APIRouter(tags=["model"])


class ParseRequest(BaseModel):
    """A message to understand."""

    text: MessageText = Field(description="The user's message (1 to 10,000 characters).")


class EntityOut(BaseModel):
    entity: str
    value: str
    start: int
    end: int
    confidence: float
    extractor: str


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


@router.get("/health", responses={503: {"description": "The database or Redis does not answer, or no parsing process runs."}})
async def health(runtime: RuntimeDep) -> JSONResponse:
    """Whether this worker can take messages: the database and (when configured) Redis answer,
    and messages can be parsed."""
    try:
        await to_thread.run_sync(runtime.store.models, "nlu")
        database = "ok"
    except StorageUnavailable:
        database = "unavailable"
    try:
        await runtime.coordinator.ping()
        redis = "ok" if runtime.config.redis_url else "not configured"
    except Exception:  # any failure to reach Redis means unhealthy, whatever the client raised
        redis = "unavailable"
    healthy = database == "ok" and redis != "unavailable" and runtime.manager.understanding.available
    generator = runtime.manager.generator
    body = {
        "status": "ok" if healthy else "unavailable",
        "model": runtime.manager.understanding.version,
        "parsing": runtime.manager.understanding.parsing,
        "generator": generator.version if generator is not None else None,
        "database": database,
        "redis": redis,
    }
    return JSONResponse(body, 200 if healthy else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text format: messages, turn latency, NLU confidence, fallbacks and handoffs per channel."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)


@router.post("/model/parse", response_model=ParseResponse)
async def parse(request: ParseRequest, runtime: RuntimeDep) -> ParseResponse:
    """Intent, ranking and entities of one message, without touching any conversation."""
    result = await runtime.manager.parse(request.text)
    return ParseResponse(
        text=result.text,
        intent=IntentOut(name=result.intent, confidence=result.confidence),
        intent_ranking=[IntentOut(name=name, confidence=confidence) for name, confidence in result.ranking],
        entities=[EntityOut(**{k: v for k, v in vars(e).items() if k != "text"}) for e in result.entities],
        model=result.model_version,
    )
