"""Settings: the one place that reads the environment."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTKLIK_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./var/otklik.db"
    secret_key: SecretStr | None = None
    base_url: str = "http://127.0.0.1:8000"
    # Background work (SLA watcher, outbox, retries, event processing) runs beside the
    # web server: `otklik serve` starts an `otklik worker` process for it. False when
    # separate `otklik worker` processes do it (the scaled shape).
    run_worker: bool = True
    # The web process processes the deliveries it stores itself (a thread). `otklik serve`
    # turns this off for its web processes: its worker process does it on another core.
    process_events: bool = True
    # Where the embedded default keeps its generated secret key and other local state.
    var_dir: Path = Path("var")

    vk_api_url: str = "https://api.vk.com"
    telegram_api_url: str = "https://api.telegram.org"
    ok_api_url: str = "https://api.ok.ru"
    max_api_url: str = "https://platform-api2.max.ru"
    # Optional allow-list of OK's source networks (comma-separated CIDRs). Off by
    # default: a reverse proxy in front would hide the real source address.
    ok_allowed_networks: str = ""

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "otklik@localhost"
    smtp_starttls: bool = True
    # The Telegram bot that sends SLA alerts to users' `telegram_chat_id`; None: no Telegram alerts.
    telegram_alert_bot_token: SecretStr | None = None

    # Peers whose X-Forwarded-For/-Proto are believed (comma-separated addresses or
    # networks, "*" for any); empty: none, the TCP peer is the client. Only a reverse
    # proxy of your own belongs here: whoever is trusted can name any client address.
    trusted_proxies: str = "127.0.0.1"

    # Outgoing webhook subscriptions may point at loopback/private addresses (a receiver
    # inside your own network); off: only public addresses, so events cannot probe the
    # services beside Otklik.
    outgoing_webhooks_allow_private: bool = False

    # Personal data: days after a question is finished (closed, dismissed, withdrawn or
    # answered and quiet) after which its citizen's name, ids and every text are erased
    # (the figures stay). The regional default; an institution may set its own
    # (`institution.retention_days`). 0: never erase.
    retention_days: int = 1095

    # Seconds between background sweeps (SLA watcher, outbox, retries).
    worker_interval: float = 5.0
    # `/readyz` says "degraded" when the oldest pending delivery waits longer (seconds).
    ready_max_lag: float = 60.0
    log_level: str = "INFO"
    # Sessions of the web interface live this many hours.
    session_hours: int = 12
    # ... and end sooner when unused for this many minutes (an open page's polls count as use).
    session_idle_minutes: int = 120
    # Cookies are marked Secure when the public URL is https.
    cookie_secure: bool | None = None

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        # Plain postgresql:// means the psycopg 3 driver, which serves sync and async.
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def async_database_url(self) -> str:
        if self.is_sqlite:
            return self.database_url.replace("sqlite://", "sqlite+aiosqlite://", 1)
        return self.database_url

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.base_url.startswith("https://")

    def api_url(self, platform: str) -> str:
        return {
            "vk": self.vk_api_url,
            "telegram": self.telegram_api_url,
            "ok": self.ok_api_url,
            "max": self.max_api_url,
        }.get(platform, "")

    def resolved_secret_key(self) -> str:
        """The configured key, or (embedded default) one generated once and kept in var/."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Exclusive create: two processes starting together keep the first key.
        try:
            with path.open("x") as fh:
                fh.write(key)
            path.chmod(0o600)
        except FileExistsError:
            return path.read_text().strip()
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
