"""The `otklik` command line."""

from __future__ import annotations

import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.core.db import make_engine
from app.core.logs import setup_logging

cli = typer.Typer(
    help="Отклик: входящие вопросы граждан с официальных страниц. Otklik command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users_cli = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_cli = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
directory_cli = typer.Typer(
    help="Import and export the directory spreadsheet.", no_args_is_help=True
)
cli.add_typer(users_cli, name="users")
cli.add_typer(tokens_cli, name="tokens")
cli.add_typer(directory_cli, name="directory")


def _settings() -> Settings:
    return get_settings()


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@cli.command()
def migrate() -> None:
    """Upgrade the database in OTKLIK_DATABASE_URL to the newest schema."""
    from app.core import migrate as migrations

    settings = _settings()
    migrations.upgrade(settings.database_url)
    typer.echo(f"database at revision {migrations.head_revision()}")


def proxy_options(settings: Settings) -> tuple[bool, str | None]:
    """uvicorn's `proxy_headers` and `forwarded_allow_ips`: forwarded headers are
    believed only from OTKLIK_TRUSTED_PROXIES, and not at all when it is empty."""
    trusted = settings.trusted_proxies.strip()
    return bool(trusted), trusted or None


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve HTTP, with an `otklik worker` process beside it unless OTKLIK_RUN_WORKER=false.

    The web processes only store webhook deliveries and answer; processing them,
    the SLA watcher, the outbox and retries run in the worker, on a core of its own.
    """
    import os

    import uvicorn

    from app.jobs.companion import Companion

    settings = _settings()
    setup_logging(settings.log_level)
    # The web processes read their settings from the environment (uvicorn's factory).
    os.environ["OTKLIK_RUN_WORKER"] = "false"
    os.environ["OTKLIK_PROCESS_EVENTS"] = "false"
    get_settings.cache_clear()  # one web process is this one: it reads them again
    companion = (
        Companion([sys.executable, "-m", "app.cli", "worker"]) if settings.run_worker else None
    )
    if companion is None:
        typer.echo("OTKLIK_RUN_WORKER=false: run `otklik worker` to process events", err=True)
    else:
        companion.start()
    proxy_headers, forwarded_allow_ips = proxy_options(settings)
    try:
        uvicorn.run(
            "app.main:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
            access_log=False,
            log_config=None,
        )
    finally:
        if companion is not None:
            companion.stop()


class WorkerPart(StrEnum):
    all = "all"
    processing = "processing"
    jobs = "jobs"


@cli.command()
def worker(
    only: Annotated[
        WorkerPart,
        typer.Option(
            "--only",
            help="processing: only process stored deliveries; jobs: only the background "
            "jobs (SLA watcher, outbox, retries, notifications); all: both",
        ),
    ] = WorkerPart.all,
) -> None:
    """Background work: event processing, the SLA watcher, the outbox, retries.

    With --only, one process does one of them, so that the SLA sweep of a backlog of
    overdue questions does not take the processor's CPU (run one `--only jobs` beside
    any number of `--only processing`)."""
    import httpx

    from app.core.crypto import Cipher
    from app.core.db import utcnow
    from app.jobs.context import JobContext
    from app.jobs.runner import Runner, StopSignals
    from app.processing.processor import Processor
    from app.worker import background_jobs

    settings = _settings()
    setup_logging(settings.log_level)
    engine = make_engine(settings.database_url)
    stop = threading.Event()
    signals = StopSignals(stop)
    signals.install()
    cipher = Cipher(settings.resolved_secret_key())
    processor = threading.Thread(
        target=Processor(engine, cipher, utcnow, settings).run_forever,
        args=(stop,),
        name="otklik-processor",
    )
    if only != WorkerPart.jobs:
        processor.start()
    if only == WorkerPart.processing:
        signals.wait()
    else:
        with httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
            ctx = JobContext(
                engine=engine,
                settings=settings,
                clock=utcnow,
                http=http,
                cipher=cipher,
                stopping=stop,
            )
            # Within the 20 s that `otklik serve` gives its worker before SIGKILL.
            Runner(ctx, background_jobs()).run(timeout=15, signals=signals)
    if processor.is_alive():
        processor.join(timeout=30)
    engine.dispose()


@cli.command()
def demo(
    history_days: Annotated[
        int, typer.Option(help="Days of traffic to replay through ingestion")
    ] = 0,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing if the directory has data")
    ] = False,
    scale: Annotated[
        str | None,
        typer.Option(help="region-year: about a million questions over a year, in bulk"),
    ] = None,
    questions: Annotated[
        int | None, typer.Option(help="with --scale: this many questions instead")
    ] = None,
) -> None:
    """Seed the demo region (Челябинская область) and print the users it created."""
    from app.demo import region as demo_data

    settings = _settings()
    if scale is not None or questions is not None:
        _demo_scale(settings, scale, questions)
        return
    engine = make_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        if if_empty and not demo_data.is_empty(session):
            typer.echo("the database already has data: demo not seeded")
            credentials = demo_data.credentials_file(settings)
            if credentials.exists():
                typer.echo(credentials.read_text())
            return
        created = demo_data.seed(session, settings)
        session.commit()
    typer.echo(created.summary())
    if history_days > 0:
        from app.demo import simulate as simulation

        count = simulation.replay_history(settings, engine, days=history_days)
        typer.echo(f"history: {count} webhook deliveries replayed over {history_days} days")
    engine.dispose()


def _demo_scale(settings: Settings, scale: str | None, questions: int | None) -> None:
    """A region's year of questions written in bulk (`app.demo.region_year`), for
    measuring reports and queues at scale."""
    from app.core.db import utcnow
    from app.demo import region as demo_data
    from app.demo import region_year

    if scale is not None and scale not in region_year.SCALES:
        _fail(f"unknown scale {scale!r}: {', '.join(region_year.SCALES)}")
    count = questions if questions is not None else region_year.SCALES[scale or "region-year"]
    if count <= 0:
        _fail("--questions must be positive")
    engine = make_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:

        def committed(done: int) -> None:
            session.commit()
            if done % 100_000 == 0:
                typer.echo(f"  {done:,} questions written".replace(",", " "), err=True)

        intended = region_year.generate(
            session, settings, questions=count, now=utcnow(), after_chunk=committed
        )
        session.commit()
    typer.echo(intended.summary())
    typer.echo(f"demo users and passwords: {demo_data.credentials_file(settings)}")
    region_year.analyze(engine)
    typer.echo("planner statistics refreshed (ANALYZE; VACUUM on PostgreSQL)")
    engine.dispose()


@cli.command()
def simulate(
    base_url: Annotated[str, typer.Option(help="where Otklik runs, e.g. http://127.0.0.1:8000")],
    rate: Annotated[float, typer.Option(help="deliveries per second")] = 5.0,
    duration: Annotated[float, typer.Option(help="seconds to run")] = 10.0,
    seed: Annotated[int | None, typer.Option(help="random seed, for repeatable traffic")] = None,
) -> None:
    """Post realistic, correctly signed webhook traffic for the pages in the database."""
    from app.core.crypto import Cipher
    from app.demo import simulate as simulation

    settings = _settings()
    engine = make_engine(settings.database_url)
    pages = [s for _, s in simulation.load_pages(engine, Cipher(settings.resolved_secret_key()))]
    engine.dispose()
    if not pages:
        _fail("no pages in the database: run `otklik demo` first")
    if rate <= 0 or duration <= 0:
        _fail("--rate and --duration must be positive")
    report = simulation.run(base_url, pages, rate=rate, duration=duration, seed=seed)
    typer.echo(report.summary())


@users_cli.command("create")
def users_create(
    login: str,
    role: Annotated[str, typer.Option(help="admin | supervisor | operator")],
    institution: Annotated[
        list[int] | None, typer.Option(help="institution id (repeatable)")
    ] = None,
    territory: Annotated[int | None, typer.Option(help="territory id (supervisor scope)")] = None,
    name: Annotated[str, typer.Option(help="display name")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Create a user; prints a generated password unless --password-stdin is given."""
    from app.auth import audit
    from app.auth import service as auth_service
    from app.auth import users as auth_users
    from app.auth.models import Role, UserCreate
    from app.core.errors import DomainError

    try:
        role_value = Role(role)
    except ValueError:
        _fail(f"unknown role {role!r}: admin, supervisor or operator")
        return
    generated = not password_stdin
    password = auth_service.generate_password() if generated else sys.stdin.readline().rstrip("\n")
    institutions = institution or []
    data = UserCreate(
        login=login,
        name=name,
        role=role_value,
        password=password,
        territory_id=territory,
        institution_id=institutions[0] if role_value == Role.supervisor and institutions else None,
        institution_ids=institutions if role_value == Role.operator else [],
    )
    engine = make_engine(_settings().database_url)
    with Session(engine) as session:
        try:
            user = auth_service.create_user(session, data)
            audit.record(
                session,
                actor=None,
                action="user.create",
                object_type="user",
                object_id=user.id,
                after=auth_users.state(session, user),
                summary=f"Создан пользователь «{user.login}» из командной строки",
            )
            session.commit()
        except DomainError as exc:
            _fail(exc.message)
            return
        typer.echo(f"created user {user.login} (id {user.id}, role {user.role})")
    if generated:
        typer.echo(f"password: {password}")


@tokens_cli.command("create")
def tokens_create(
    login: str, name: Annotated[str, typer.Option(help="what the token is for")] = "cli"
) -> None:
    """Print a new API token for that user (the token is the last line)."""
    from app.auth import audit
    from app.auth import service as auth_service
    from app.auth import tokens as auth_tokens

    engine = make_engine(_settings().database_url)
    with Session(engine) as session:
        user = auth_service.get_user_by_login(session, login)
        if user is None:
            _fail(f"no user {login!r}")
            return
        token, plain = auth_tokens.create_token(session, user, name)
        audit.record(
            session,
            actor=None,
            action="token.create",
            object_type="token",
            object_id=token.id,
            after={"user_id": user.id, "login": user.login, "name": name, "prefix": token.prefix},
            summary=f"Выпущен токен {token.prefix}… для «{user.login}» из командной строки",
        )
        session.commit()
    typer.echo(f"token for {login} (shown once, store it now):")
    typer.echo(plain)


@directory_cli.command("import")
def directory_import(file: Path) -> None:
    """Load territories, institutions and pages from a CSV or XLSX registry."""
    from tqdm import tqdm

    from app.core.errors import DomainError
    from app.directory import spreadsheet, spreadsheet_import

    if not file.exists():
        _fail(f"no such file: {file}")
    engine = make_engine(_settings().database_url)
    with Session(engine) as session:
        try:
            raw = spreadsheet.read_rows(file)
            with tqdm(total=len(raw), unit="row", file=sys.stderr, disable=len(raw) < 500) as bar:
                result = spreadsheet_import.import_rows(session, raw, progress=bar.update)
            session.commit()
        except DomainError as exc:
            session.rollback()
            _fail(f"{exc.message}; nothing was imported")
            return
    created = ", ".join(f"{k} {v}" for k, v in result.created.items())
    updated = ", ".join(f"{k} {v}" for k, v in result.updated.items())
    typer.echo(f"{result.rows} rows: created {created}; updated {updated}")


@directory_cli.command("export")
def directory_export(file: Path) -> None:
    """Write the directory in the import format (CSV or XLSX by the file's extension)."""
    from app.core.errors import DomainError
    from app.directory import spreadsheet, spreadsheet_export

    engine = make_engine(_settings().database_url)
    with Session(engine) as session:
        rows = spreadsheet_export.export_rows(session)
    try:
        spreadsheet.write_rows(file, rows)
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"{len(rows)} rows written to {file}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
