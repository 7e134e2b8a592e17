"""The baseline: a bare FastAPI endpoint that reads and parses the JSON body and answers ok."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.post("/webhooks/{platform}/{key}")
async def receive(platform: str, key: str, request: Request) -> PlainTextResponse:
    json.loads(await request.body())
    return PlainTextResponse("ok")
