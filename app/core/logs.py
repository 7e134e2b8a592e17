"""Structured logs: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


# Credentials that platform APIs carry in URLs: Telegram's bot token in the path
# (/bot123:ABC/sendMessage), OK's and VK's access_token and OK's sig in the query.
_SECRETS = re.compile(
    r"(?P<key>/bot)(?P<value>\d+:[A-Za-z0-9_-]+)"
    r"|(?P<qkey>(?:access_token|session_secret_key|sig|secret|token)=)(?P<qvalue>[^&\s\"']+)",
    re.IGNORECASE,
)
# Libraries that log request URLs at INFO: only their warnings are worth a line.
_CHATTY = ("httpx", "httpcore", "hpack", "urllib3", "multipart")


def redact(text: str) -> str:
    """The text with credentials found in URLs replaced by `***`."""
    return _SECRETS.sub(
        lambda m: f"{m.group('key')}***" if m.group("key") else f"{m.group('qkey')}***", text
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # uvicorn's access log duplicates ours and is not structured.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
