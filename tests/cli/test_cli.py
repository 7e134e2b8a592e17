"""The `otklik` command line, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND


def _otklik(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
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


@pytest.mark.skipif(BACKEND != "sqlite", reason="the CLI flow runs once, on its own SQLite file")
def test_migrate_demo_users_tokens_directory(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert _otklik(["migrate"], cli_env).returncode == 0
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

    token = _otklik(["tokens", "create", "petrova"], cli_env)
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
        ["users", "create"],
        ["tokens", "create"],
        ["directory", "import"],
        ["directory", "export"],
    ],
)
def test_every_command_has_help(cli_env: dict[str, str], command: list[str]) -> None:
    result = _otklik([*command, "--help"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
