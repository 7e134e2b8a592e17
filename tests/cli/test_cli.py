"""The `otklik` command line, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _otklik(args: list[str], env: dict[str, str], stdin: str | None = None) -> Ran:
    """Run a command in process (fast); the same code path as the console script."""
    from typer.testing import CliRunner

    from app.cli import cli
    from app.core.config import get_settings

    get_settings.cache_clear()
    overrides = {k: v for k, v in env.items() if k.startswith("OTKLIK_")}
    result = CliRunner().invoke(cli, args, env=overrides, input=stdin)
    get_settings.cache_clear()
    return Ran(result.exit_code, result.stdout, result.stderr)


def _console(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `otklik` entry point in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        OTKLIK_VAR_DIR=str(tmp_path / "var"),
        OTKLIK_LOG_LEVEL="WARNING",
    )
    return env


@pytest.mark.sqlite_run
def test_migrate_demo_users_tokens_directory(cli_env: dict[str, str], tmp_path: Path) -> None:
    migrated = _console(["migrate"], cli_env)
    assert migrated.returncode == 0, migrated.stderr
    demo = _otklik(["demo"], cli_env)
    assert demo.returncode == 0, demo.stderr
    assert "admin / " in demo.stdout and "operator" in demo.stdout and "supervisor" in demo.stdout
    again = _otklik(["demo", "--if-empty"], cli_env)
    assert "already has data" in again.stdout

    created = _otklik(
        [
            "users",
            "create",
            "petrova",
            "--role",
            "supervisor",
            "--territory",
            "1",
            "--password-stdin",
        ],
        cli_env,
        stdin="long enough password\n",
    )
    assert created.returncode == 0, created.stderr
    duplicate = _otklik(["users", "create", "petrova", "--role", "admin"], cli_env)
    assert duplicate.returncode == 1 and "уже существует" in duplicate.stderr
    operator_without_scope = _otklik(["users", "create", "x1", "--role", "operator"], cli_env)
    assert operator_without_scope.returncode == 1

    token = _console(["tokens", "create", "petrova"], cli_env)
    assert token.returncode == 0
    assert token.stdout.strip().splitlines()[-1].startswith("otk_")

    out = tmp_path / "directory.xlsx"
    exported = _otklik(["directory", "export", str(out)], cli_env)
    assert exported.returncode == 0 and out.exists()
    reimported = _otklik(["directory", "import", str(out)], cli_env)
    assert reimported.returncode == 0, reimported.stderr
    assert (
        "created territory 0, institution 0, page 0; updated territory 0, institution 0, page 0"
        in reimported.stdout
    )

    bad = tmp_path / "bad.csv"
    bad.write_text("territory,institution,sector\nОбласть / Город,Школа,school\n", encoding="utf-8")
    failed = _otklik(["directory", "import", str(bad)], cli_env)
    assert failed.returncode == 1
    assert "Строка 2" in failed.stderr and "nothing was imported" in failed.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["worker"],
        ["migrate"],
        ["demo"],
        ["simulate"],
        ["users", "create"],
        ["tokens", "create"],
        ["directory", "import"],
        ["directory", "export"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(p) for p in found.stdout.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but is not reaped yet is no longer running.
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return not state.stdout.strip().startswith("Z")


@pytest.mark.sqlite_run
def test_serve_runs_a_worker_process_that_processes_deliveries(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    import socket
    import sqlite3
    import time

    import httpx

    assert _console(["migrate"], cli_env).returncode == 0
    assert _console(["demo"], cli_env).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(cli_env, OTKLIK_WORKER_INTERVAL="0.5")
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env
    )
    try:
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while time.monotonic() < deadline and not workers:
            time.sleep(0.2)
            workers = _children(server.pid)
        assert len(workers) == 1, "otklik serve started no worker process"
        worker = workers.pop()
        # Just forked, the child shows serve's command line until it has exec'd its own.
        command = ""
        while time.monotonic() < deadline and "worker" not in command:
            command = subprocess.run(
                ["ps", "-o", "args=", "-p", str(worker)], capture_output=True, text=True
            ).stdout
            time.sleep(0.05)
        assert "worker" in command
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)

        # The demo keeps two deliveries that failed processing (for the admin's list of
        # failures): only what the simulation sends counts here.
        db = sqlite3.connect(tmp_path / "cli.db")
        (before,) = db.execute("select coalesce(max(id), 0) from inbound_event").fetchone()
        db.close()
        sent = _console(
            [
                "simulate",
                "--base-url",
                f"http://127.0.0.1:{port}",
                "--rate",
                "20",
                "--duration",
                "1",
            ],
            cli_env,
        )
        assert sent.returncode == 0, sent.stderr
        assert "transport errors 0" in sent.stdout
        # The web process only stores; the worker process turns deliveries into questions.
        # How many the simulation got through in its second depends on the machine's load;
        # what matters is that every stored one is processed.
        db = sqlite3.connect(tmp_path / "cli.db")
        statuses: dict[str, int] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = dict(
                db.execute(
                    "select status, count(*) from inbound_event where id > ? group by 1",
                    (before,),
                )
            )
            if statuses and set(statuses) <= {"processed", "ignored"}:
                break
            time.sleep(0.2)
        assert statuses.get("processed", 0) >= 1, statuses
        assert set(statuses) <= {"processed", "ignored"}, statuses
        assert db.execute("select count(*) from question").fetchone()[0] > 0
        db.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The worker stops with the server: within the 20 s a worker is given to finish its
    # jobs before SIGKILL (a loaded machine once needed more than the 5 s waited here).
    deadline = time.monotonic() + 25
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker), "the worker outlived otklik serve"


# --- forwarded headers --------------------------------------------------------------------


async def _client_address(options: tuple[bool, str | None], peer: str) -> str:
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        host = scope["client"][0] if scope.get("client") else ""
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": host.encode()})

    proxy_headers, allowed = options
    app: Any = ProxyHeadersMiddleware(echo, trusted_hosts=allowed or []) if proxy_headers else echo
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://otklik") as client:
        response = await client.get("/", headers={"X-Forwarded-For": "203.0.113.7"})
    return response.text


@pytest.mark.parametrize(
    ("trusted", "peer", "seen"),
    [
        ("127.0.0.1", "198.51.100.20", "198.51.100.20"),  # default: a stranger cannot spoof
        ("127.0.0.1", "127.0.0.1", "203.0.113.7"),  # the local reverse proxy is believed
        ("", "127.0.0.1", "127.0.0.1"),  # none trusted: the TCP peer is the client
        ("10.0.0.0/8", "10.1.2.3", "203.0.113.7"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    trusted: str, peer: str, seen: str
) -> None:
    import asyncio

    from app.cli import proxy_options
    from app.core.config import Settings

    settings = Settings(database_url="sqlite://", trusted_proxies=trusted)
    assert asyncio.run(_client_address(proxy_options(settings), peer)) == seen
