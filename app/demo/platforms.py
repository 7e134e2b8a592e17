"""The platforms' APIs as the demo's history meets them: an httpx transport that answers
the outbox's publishing calls (VK, Telegram, OK, MAX) the way the platform would.

Most replies are accepted; the history tells it when to refuse one with the platform's
own error (comments closed, messages not allowed, the bot blocked) or to be unreachable,
so the outbox records those outcomes through its own code.
"""

from __future__ import annotations

import itertools
import json
from enum import StrEnum
from urllib.parse import parse_qsl

import httpx

from app.demo.deliveries import Citizen


class Outcome(StrEnum):
    published = "published"
    refused = "refused"  # the platform says no, for good
    unreachable = "unreachable"  # no connection: the outbox keeps retrying


# The platform's refusal of a reply, as each answers it.
_VK_REFUSALS = {
    "wall.createComment": {"error_code": 212, "error_msg": "Access to post comments denied"},
    "messages.send": {
        "error_code": 901,
        "error_msg": "Can't send messages for users without permission",
    },
}
_TG_REFUSAL = {
    "ok": False,
    "error_code": 403,
    "description": "Forbidden: bot was blocked by the user",
}
_MAX_REFUSAL = {"code": "chat.denied", "message": "Dialog is closed by user"}


class DemoPlatforms:
    """Callable transport handler; `outcome` is what the next calls meet."""

    def __init__(self) -> None:
        self.outcome = Outcome.published
        self._ids = itertools.count(5000)
        self.calls = 0
        # VK citizens by id, for users.get (VK webhooks carry no names).
        self.people: dict[str, Citizen] = {}

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self), timeout=5.0)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.outcome == Outcome.unreachable:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if "/method/" in path:
            return self._vk(request, path.rsplit("/", 1)[-1])
        if path.endswith("/sendMessage"):
            return self._telegram(request)
        if "/graph/me/messages/" in path:
            if self.outcome == Outcome.refused:
                return httpx.Response(200, json={"error_code": 100, "error_msg": "chat closed"})
            return httpx.Response(
                200, json={"success": True, "message_id": f"mid.{next(self._ids)}"}
            )
        if path.endswith("/messages"):
            if self.outcome == Outcome.refused:
                return httpx.Response(403, json=_MAX_REFUSAL)
            mid = f"mid.{next(self._ids):016x}"
            return httpx.Response(200, json={"message": {"body": {"mid": mid}}})
        return httpx.Response(404, json={"error": "unknown method"})

    def _vk(self, request: httpx.Request, method: str) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        if method == "users.get":
            ids = form.get("user_ids", "").split(",")
            people = [self.people[i] for i in ids if i in self.people]
            users = [{"id": int(p.id), "first_name": p.first, "last_name": p.last} for p in people]
            return httpx.Response(200, json={"response": users})
        if self.outcome == Outcome.refused:
            return httpx.Response(
                200, json={"error": _VK_REFUSALS.get(method, _VK_REFUSALS["messages.send"])}
            )
        n = next(self._ids)
        if method == "messages.send":
            peer = int(form.get("peer_ids", "0"))
            return httpx.Response(
                200,
                json={
                    "response": [{"peer_id": peer, "message_id": n, "conversation_message_id": n}]
                },
            )
        return httpx.Response(200, json={"response": {"comment_id": n}})

    def _telegram(self, request: httpx.Request) -> httpx.Response:
        if self.outcome == Outcome.refused:
            return httpx.Response(403, json=_TG_REFUSAL)
        payload = json.loads(request.content)
        chat = payload["chat_id"]
        kind = "private" if isinstance(chat, int) and chat > 0 else "supergroup"
        result = {"message_id": next(self._ids), "chat": {"id": chat, "type": kind}}
        return httpx.Response(200, json={"ok": True, "result": result})
