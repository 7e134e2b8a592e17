"""VK: connect a community's Callback API to Otklik with its community token.

`prepare` reads the confirmation code (groups.getCallbackConfirmationCode), the
community's name and the token's rights; the app stores the code before `register`
adds (or updates) the Callback server (groups.addCallbackServer / editCallbackServer),
because VK checks the new server at once with a `confirmation` request. Then
groups.setCallbackSettings turns on the events the adapter reads, in API 5.199, and
groups.getCallbackServers tells whether VK confirmed the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from webhooks.base import (
    PageSecrets,
    PermanentError,
    as_dict,
    as_int,
    as_list,
    as_str,
    id_str,
)
from webhooks.setup import Check, Connected, WebhookStatus
from webhooks.vk_api import API_VERSION, VK_API, _call

SERVER_TITLE = "Otklik"  # VK allows at most 14 characters
# Every event webhooks/vk.py reads: comments of five kinds with their edits, deletions
# and restorations, new posts (a thread's context) and private messages both ways.
EVENTS: tuple[str, ...] = (
    *(
        f"{family}_{action}"
        for family in (
            "wall_reply",
            "board_post",
            "photo_comment",
            "video_comment",
            "market_comment",
        )
        for action in ("new", "edit", "delete", "restore")
    ),
    "wall_post_new",
    "message_new",
    "message_reply",
    "message_edit",
)
STATUS_RU = {
    "ok": "подтверждён",
    "wait": "ждёт подтверждения",
    "failed": "не прошёл проверку: ВКонтакте не получил код подтверждения",
    "unconfigured": "адрес не задан",
}


@dataclass(frozen=True, slots=True)
class Prepared:
    group_id: str
    name: str
    confirmation_code: str
    # Rights of the community token (groups.getTokenPermissions): "manage", "messages", ...
    permissions: frozenset[str]

    @property
    def can_register(self) -> bool:
        """Only a token with «Управление сообществом» may add a Callback server."""
        return "manage" in self.permissions


@dataclass(frozen=True, slots=True)
class CallbackServer:
    id: int
    url: str
    title: str
    status: str
    secret_key: str


def _page(api_url: str, group_id: str, token: str) -> PageSecrets:
    return PageSecrets(
        platform="vk", key="", external_id=group_id, access_token=token, api_url=api_url
    )


def _call_vk(
    client: httpx.Client,
    api_url: str,
    token: str,
    group_id: str,
    method: str,
    params: dict[str, str],
) -> Any:
    try:
        return _call(client, _page(api_url, group_id, token), method, params, token)
    except PermanentError as error:
        raise _setup_error(method, error) from error


def _setup_error(method: str, error: PermanentError) -> PermanentError:
    if error.code == "token_invalid":
        return PermanentError(
            "token_invalid",
            "ВКонтакте не принимает ключ доступа. Создайте ключ в сообществе (Управление → "
            "Работа с API → Ключи доступа) и скопируйте его целиком.",
        )
    if error.code in ("access_denied", "no_permission"):
        return PermanentError(
            "no_manage",
            "У ключа нет права «Управление сообществом» или он выдан другому сообществу. "
            "Создайте ключ с этим правом — или настройте сервер вручную по адресу и коду ниже.",
        )
    if error.code == "vk_2000":
        return PermanentError(
            "too_many_servers",
            "У сообщества уже 10 серверов Callback API — больше ВКонтакте не разрешает. "
            "Удалите ненужный сервер (Управление → Работа с API → Callback API) и повторите.",
        )
    if error.code == "invalid_request":
        return PermanentError(
            "invalid_request",
            f"ВКонтакте отклонил запрос {method}: проверьте номер сообщества (group_id).",
        )
    return PermanentError(error.code, f"ВКонтакте отклонил запрос {method}: {error.message_ru}")


def token_permissions(
    client: httpx.Client, api_url: str, token: str, group_id: str
) -> frozenset[str]:
    answer = as_dict(_call_vk(client, api_url, token, group_id, "groups.getTokenPermissions", {}))
    return frozenset(
        as_str(as_dict(item).get("name")) for item in as_list(answer.get("permissions"))
    ) - {""}


def confirmation_code(client: httpx.Client, api_url: str, token: str, group_id: str) -> str:
    answer = as_dict(
        _call_vk(
            client,
            api_url,
            token,
            group_id,
            "groups.getCallbackConfirmationCode",
            {"group_id": group_id},
        )
    )
    code = as_str(answer.get("code"))
    if not code:
        raise PermanentError("no_code", "ВКонтакте не выдал код подтверждения. Повторите.")
    return code


def group_name(client: httpx.Client, api_url: str, token: str, group_id: str) -> str:
    answer = _call_vk(client, api_url, token, group_id, "groups.getById", {"group_id": group_id})
    # 5.199 answers {"groups": [...]}; older versions a bare list.
    items = as_list(as_dict(answer).get("groups")) if isinstance(answer, dict) else as_list(answer)
    for item in items:
        group = as_dict(item)
        if id_str(group.get("id")) == group_id:
            return as_str(group.get("name"))
    return ""


def callback_servers(
    client: httpx.Client, api_url: str, token: str, group_id: str
) -> list[CallbackServer]:
    answer = as_dict(
        _call_vk(
            client, api_url, token, group_id, "groups.getCallbackServers", {"group_id": group_id}
        )
    )
    servers = []
    for item in as_list(answer.get("items")):
        row = as_dict(item)
        server_id = as_int(row.get("id"))
        if server_id is None:
            continue
        servers.append(
            CallbackServer(
                id=server_id,
                url=as_str(row.get("url")),
                title=as_str(row.get("title")),
                status=as_str(row.get("status")),
                secret_key=as_str(row.get("secret_key")),
            )
        )
    return servers


def prepare(client: httpx.Client, api_url: str, token: str, group_id: str) -> Prepared:
    """What Otklik needs before the server is added: the confirmation code (which the
    receiver answers VK's check with), the community's name and the token's rights."""
    group_id = group_id.strip().removeprefix("-")
    permissions = token_permissions(client, api_url, token, group_id)
    return Prepared(
        group_id=group_id,
        name=group_name(client, api_url, token, group_id),
        confirmation_code=confirmation_code(client, api_url, token, group_id),
        permissions=permissions,
    )


def register(
    client: httpx.Client,
    api_url: str,
    token: str,
    group_id: str,
    *,
    webhook_url: str,
    secret: str,
) -> Connected:
    """Add the Callback server for `webhook_url` (or update the one already there) with
    our secret, turn on the events in API 5.199, and read back whether VK confirmed it.
    Needs a token with «Управление сообществом»; raises PermanentError or TransientError."""
    existing = next(
        (s for s in callback_servers(client, api_url, token, group_id) if s.url == webhook_url),
        None,
    )
    params = {"group_id": group_id, "url": webhook_url, "title": SERVER_TITLE, "secret_key": secret}
    if existing is None:
        answer = as_dict(
            _call_vk(client, api_url, token, group_id, "groups.addCallbackServer", params)
        )
        server_id = as_int(answer.get("server_id"))
        if server_id is None:
            raise PermanentError("no_server", "ВКонтакте не вернул номер сервера. Повторите.")
    else:
        server_id = existing.id
        _call_vk(
            client,
            api_url,
            token,
            group_id,
            "groups.editCallbackServer",
            {**params, "server_id": str(server_id)},
        )
    settings = {"group_id": group_id, "server_id": str(server_id), "api_version": API_VERSION}
    settings.update(dict.fromkeys(EVENTS, "1"))
    _call_vk(client, api_url, token, group_id, "groups.setCallbackSettings", settings)
    status = _server_status(client, api_url, token, group_id, webhook_url)
    return Connected(
        external_id=group_id,
        name="",
        checks=(
            Check("Сервер Callback API добавлен", True, f"№ {server_id}"),
            Check("События и версия API", True, f"{len(EVENTS)} типов событий, v{API_VERSION}"),
            *status.checks,
        ),
        extra={"server_id": str(server_id)},
    )


def _server_status(
    client: httpx.Client, api_url: str, token: str, group_id: str, webhook_url: str
) -> WebhookStatus:
    servers = callback_servers(client, api_url, token, group_id)
    ours = next((s for s in servers if s.url == webhook_url), None)
    if ours is None:
        others = ", ".join(s.url for s in servers) or "нет ни одного"
        return WebhookStatus(
            registered_url="",
            registered=False,
            checks=(
                Check(
                    "Сервер Callback API",
                    False,
                    f"Адреса Отклика нет среди серверов сообщества (есть: {others}).",
                ),
            ),
        )
    confirmed = ours.status == "ok"
    return WebhookStatus(
        registered_url=ours.url,
        registered=confirmed,
        last_error=None if confirmed or ours.status == "wait" else STATUS_RU.get(ours.status),
        checks=(
            Check(
                "Сервер Callback API",
                confirmed,
                f"№ {ours.id}: {STATUS_RU.get(ours.status, ours.status or '—')}",
            ),
        ),
    )


class VkSetup:
    name = "vk"

    def status(self, client: httpx.Client, page: PageSecrets, webhook_url: str) -> WebhookStatus:
        token = page.access_token or ""
        if not token:
            raise PermanentError("no_token", "Для страницы не задан ключ доступа сообщества.")
        base = page.api_url or VK_API
        group_id = page.external_id.strip().removeprefix("-")
        return _server_status(client, base, token, group_id, webhook_url)
