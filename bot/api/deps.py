"""Dependencies shared by routes: the running bot and the API token check."""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.runtime import BotRuntime

TOKEN_VARIABLE = "SLMBOT_API_TOKEN"


# Dependencies are coroutines: FastAPI runs a plain function in its thread pool, a hop that cost
# each REST message ~130 us of CPU and a place in the queue for the threads the turns batch in.
async def get_runtime(request: Request) -> BotRuntime:
    return request.app.state.runtime


RuntimeDep = Annotated[BotRuntime, Depends(get_runtime)]
bearer = HTTPBearer(auto_error=False, description=f"The value of {TOKEN_VARIABLE} in the server's environment.")


async def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Protect transcripts and agent endpoints with ``Authorization: Bearer $SLMBOT_API_TOKEN``."""
    expected = os.environ.get(TOKEN_VARIABLE)
    if not expected:
        raise HTTPException(403, f"this endpoint is disabled: set {TOKEN_VARIABLE} in the server's environment")
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


TokenDep = Depends(require_token)
