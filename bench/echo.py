"""The ceiling for the serving benchmark: a bare FastAPI endpoint with the REST channel's shape.

It parses and answers the same JSON as ``/webhooks/rest/webhook`` and does nothing else, so
the distance between it and the bot is what the bot's own work costs.
"""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Message(BaseModel):
    sender: str
    message: str


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/webhooks/rest/webhook")
async def echo(message: Message) -> list[dict[str, str]]:
    return [{"recipient_id": message.sender, "text": message.message}]
