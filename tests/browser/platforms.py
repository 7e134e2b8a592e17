"""A local stand-in for the platforms' APIs (VK, Telegram Bot API, OK, MAX) for the
browser tests' server, so a reply is really published and set-up calls really answered,
without the internet. Every request is recorded (`FakePlatforms.calls`), so a test can
assert what Otklik sent. The answers follow the shapes the adapters in `webhooks/` read:
VK `{"response": …}`, Telegram `{"ok": true, "result": …}`, MAX and OK JSON objects.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    platform: str  # vk, telegram, ok, max
    method: str  # VK and Telegram API method, else the HTTP method and path
    params: dict[str, Any]


@dataclass
class FakePlatforms:
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    webhooks: dict[str, str] = field(default_factory=dict)  # Telegram token -> URL set
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(700_001))
    _server: ThreadingHTTPServer | None = None

    def url(self, platform: str) -> str:
        return f"http://127.0.0.1:{self.port}/{platform}"

    def methods(self, platform: str) -> list[str]:
        return [c.method for c in self.calls if c.platform == platform]

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                if raw:
                    kind = self.headers.get("content-type", "")
                    if "json" in kind:
                        try:
                            body = json.loads(raw)
                        except ValueError:
                            body = {}
                        if isinstance(body, dict):
                            params.update(body)
                    else:
                        params.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
                platform, _, rest = parts.path.lstrip("/").partition("/")
                answer = fake.answer(platform, self.command, "/" + rest, params)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, platform: str, verb: str, path: str, params: dict[str, Any]) -> Any:
        if platform == "vk":
            method = path.removeprefix("/method/")
            self.calls.append(Call("vk", method, params))
            return {"response": self._vk(method, params)}
        if platform == "telegram":
            token, _, method = path.removeprefix("/bot").partition("/")
            self.calls.append(Call("telegram", method, params))
            return {"ok": True, "result": self._telegram(token, method, params)}
        self.calls.append(Call(platform, f"{verb} {path}", params))
        if platform == "max":
            if path.startswith("/messages"):
                return {"message": {"body": {"mid": f"mid.fake{next(self._ids)}"}}}
            return {"success": True, "subscriptions": []}
        return {"success": True, "message_id": f"ok{next(self._ids)}"}

    def _vk(self, method: str, params: dict[str, Any]) -> Any:
        if method.endswith("createComment"):
            return {"comment_id": next(self._ids), "parents_stack": []}
        if method == "messages.send":
            peer = str(params.get("peer_ids", "")).split(",")[0]
            return [
                {
                    "peer_id": int(peer or 0),
                    "message_id": next(self._ids),
                    "conversation_message_id": next(self._ids),
                }
            ]
        if method == "users.get":
            ids = [i for i in str(params.get("user_ids", "")).split(",") if i]
            return [
                {"id": int(i), "first_name": "Мария", "last_name": f"Иванова-{i[-3:]}"} for i in ids
            ]
        if method == "groups.getCallbackConfirmationCode":
            return {"code": "c0nf1rm"}
        if method == "groups.addCallbackServer":
            return {"server_id": 7}
        if method == "groups.getCallbackServers":
            return {"count": 0, "items": []}
        return 1

    def _telegram(self, token: str, method: str, params: dict[str, Any]) -> Any:
        if method == "sendMessage":
            return {
                "message_id": next(self._ids),
                "date": 1_760_000_000,
                "chat": {"id": params.get("chat_id")},
                "text": params.get("text", ""),
            }
        if method == "setWebhook":
            self.webhooks[token] = str(params.get("url", ""))
            return True
        if method == "getWebhookInfo":
            return {"url": self.webhooks.get(token, ""), "pending_update_count": 0}
        if method == "getMe":
            return {"id": 555000111, "is_bot": True, "username": "otklik_test_bot"}
        if method == "getUpdates":
            return []
        if method == "getChatMember":
            return {"status": "administrator", "user": {"id": 555000111, "is_bot": True}}
        if method == "getChat":
            return {"id": params.get("chat_id"), "type": "channel", "linked_chat_id": -100777}
        return True
