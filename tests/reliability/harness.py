"""Real processes for the reliability tests: `otklik serve` in a process group of its own,
a fake platform API on a local port, and a sender that delivers as VK does.

Everything started here is stopped by the fixtures in conftest.py, also when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, var: Path, **extra: str) -> dict[str, str]:
    from tests.conftest import SECRET  # here: sender processes import this module alone

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=database_url,
        OTKLIK_SECRET_KEY=SECRET,
        OTKLIK_VAR_DIR=str(var),
        OTKLIK_LOG_LEVEL="WARNING",
        OTKLIK_WORKER_INTERVAL="0.2",
        OTKLIK_TRUSTED_PROXIES="",
    )
    env.update(extra)
    return env


class Serve:
    """`otklik serve` (the web process and its worker process) as one process group."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_file: IO[bytes] | None = None

    def start(self, wait: bool = True) -> Serve:
        assert self.process is None or self.process.poll() is not None
        self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            start_new_session=True,  # its own process group: the worker dies with it
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1
        if wait:
            self.wait_up()
        return self

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"otklik serve exited: {self.tail()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"otklik serve did not start: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL to the whole group: no clean-up, no flush, like a power cut of the host."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._close_log()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # what is left of the group goes too
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._close_log()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


# --- a TCP proxy: the database's network, cut and restored --------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`. `down()` stops listening and cuts every
    connection (the database is unreachable: refused, and reset mid-query); `up()`
    listens again on the same port."""

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        self.down()  # a stalled listener, if any
        listener = self._listen()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stall(self) -> None:
        """Cut the connections, then accept new ones and never answer: a server that is
        up but not responding (overloaded, or a network that drops the packets)."""
        self.down()
        listener = self._listen()
        threading.Thread(target=self._accept, args=(listener, False), daemon=True).start()

    def _listen(self) -> socket.socket:
        # A listener closed a moment ago is released once its accept() returns (≤ 0.1 s).
        deadline = time.monotonic() + 2
        while True:
            try:
                listener = socket.create_server(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        listener.settimeout(0.1)
        self._listener = listener
        return listener

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket, forward: bool = True) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not forward:
                with self._lock:
                    self._sockets.append(client)  # held open, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


# --- a fake platform API -------------------------------------------------------------------


@dataclass
class ApiCall:
    path: str
    form: dict[str, str]
    json: Any


PUBLISHING = ("/method/wall.createComment", "/sendMessage")


@dataclass
class FakeApi:
    """VK's and Telegram's publishing methods on a local port, as the platforms behave.

    VK's wall.createComment keeps one comment per `guid` (a repeat gets the same id, as
    VK promises); Telegram's sendMessage has no such key: every call is a new message.
    While `hold` is set, a call is published and then its answer is held back until
    `release()` (a test kills the caller meanwhile: the answer is what gets lost).
    """

    calls: list[ApiCall] = field(default_factory=list)
    comments: dict[str, int] = field(default_factory=dict)  # guid -> comment id
    messages: list[dict[str, Any]] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    port: int = 0

    def published_calls(self) -> list[ApiCall]:
        return [c for c in self.calls if c.path.endswith(PUBLISHING)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                status, answer = fake.handle(self.path, self.headers.get("content-type", ""), raw)
                body = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the caller was killed while we held its request

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.comments.clear()
            self.messages.clear()
        self.release()
        self.arrived.clear()

    def release(self) -> None:
        self.hold.clear()
        self._released.set()

    def handle(self, path: str, content_type: str, raw: bytes) -> tuple[int, Any]:
        form = (
            {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if "form-urlencoded" in content_type
            else {}
        )
        data = json.loads(raw) if "json" in content_type and raw else None
        with self._lock:
            self.calls.append(ApiCall(path, form, data))
            answer = self._publish(path, form, data)
        if self.hold.is_set() and path.endswith(PUBLISHING):
            # Published, but the answer does not leave until the test lets it go.
            self._released.clear()
            self.arrived.set()
            self._released.wait(60)
        return answer

    def _publish(self, path: str, form: dict[str, str], data: Any) -> tuple[int, Any]:
        if path.endswith("/method/wall.createComment"):
            guid = form.get("guid", "")
            comment_id = self.comments.get(guid)
            if comment_id is None:
                comment_id = self.comments[guid] = 90_000 + len(self.comments)
            return 200, {"response": {"comment_id": comment_id, "parents_stack": []}}
        if path.endswith("/sendMessage"):
            message_id = 5_000 + len(self.messages)
            self.messages.append(dict(data or {}))
            chat = (data or {}).get("chat_id")
            return 200, {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": chat, "type": "supergroup"},
                    "text": (data or {}).get("text", ""),
                },
            }
        if path.endswith("/method/users.get"):
            return 200, {"response": []}  # citizens' names: none known
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}


# --- the sender ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    path: str  # /webhooks/vk/<page key>
    body: bytes
    headers: dict[str, str]


@dataclass
class Sent:
    acknowledged: int = 0
    attempts: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # status -> count of non-ok answers
    transport_errors: int = 0
    ok_with_wrong_body: int = 0


def deliver(
    base: str,
    posts: Iterable[Post],
    *,
    threads: int = 4,
    on_ack: Callable[[int], None] | None = None,
    give_up_after: float = 120,
) -> Sent:
    """Post each delivery until it is answered 200 `ok` (VK resends anything else), for
    at most `give_up_after` seconds each."""
    queue = list(posts)
    stats = Sent()
    lock = threading.Lock()

    def run() -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    post = queue.pop(0)
                deadline = time.monotonic() + give_up_after
                while time.monotonic() < deadline:
                    try:
                        response = client.post(post.path, content=post.body, headers=post.headers)
                    except httpx.HTTPError:
                        with lock:
                            stats.attempts += 1
                            stats.transport_errors += 1
                        time.sleep(0.1)  # the server is down: try again shortly
                        continue
                    with lock:
                        stats.attempts += 1
                        # VK wants the body `ok`; the other platforms any 200.
                        vk = post.path.startswith("/webhooks/vk/")
                        if response.status_code == 200 and (response.text == "ok" or not vk):
                            stats.acknowledged += 1
                            acked = stats.acknowledged
                        else:
                            if response.status_code == 200:
                                stats.ok_with_wrong_body += 1
                            stats.refused[response.status_code] = (
                                stats.refused.get(response.status_code, 0) + 1
                            )
                            acked = 0
                    if acked:
                        if on_ack is not None:
                            on_ack(acked)
                        break
                    time.sleep(0.05)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return stats


def save_posts(posts: list[Post], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for p in posts:
            fh.write(json.dumps({"path": p.path, "body": p.body.decode(), "headers": p.headers}))
            fh.write("\n")


def load_posts(path: Path) -> list[Post]:
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        posts.append(Post(row["path"], row["body"].encode(), row["headers"]))
    return posts


def wait_processed(engine: sa.Engine, expected: int, timeout: float = 60) -> dict[str, int]:
    """Until `expected` deliveries are stored and none is left to process."""
    sql = sa.text("SELECT status, count(*) FROM inbound_event GROUP BY status")
    deadline = time.monotonic() + timeout
    statuses: dict[str, int] = {}
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            statuses = {str(s): int(n) for s, n in conn.execute(sql)}
        if sum(statuses.values()) >= expected and not (
            set(statuses) & {"pending", "waiting", "failed"}
        ):
            return statuses
        time.sleep(0.1)
    raise AssertionError(f"deliveries not processed in {timeout} s: {statuses}")


def main() -> None:
    """`python -m tests.reliability.harness <base url> <posts.jsonl> [threads]`: a sender
    process; prints its figures as JSON."""
    base, path = sys.argv[1], Path(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    stats = deliver(base, load_posts(path), threads=threads)
    print(json.dumps(stats.__dict__))  # noqa: T201


if __name__ == "__main__":
    main()
