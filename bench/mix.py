"""A realistic mix of VK traffic for the benchmarks, and the check that it was all applied.

Citizens' comments and private messages on many pages of many territories, their
dates spread over the last `days`; the community's own replies to about 70 % of them
a few minutes to three days later; follow-ups; edits and deletions; re-deliveries;
and a few edits, deletions and replies that the platform delivers before the message
they refer to. Most questions are overdue when they arrive (their dates are weeks
old), so the SLA watcher has warnings, breaches and escalations to raise at once.

The bodies are built by the same code as `otklik simulate` and the demo's history
(`app.demo.deliveries`); deliveries are in the platform's order (by date), except
for the late ones described above.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.core.crypto import Cipher
from app.demo import deliveries as d
from app.demo.deliveries import Delivery
from app.demo.phrases import FOLLOW_UPS, QUESTIONS, REPLIES
from app.directory import service as directory_service
from app.directory.models import Page
from app.intake import writer
from app.intake.receive import KnownPage, check
from webhooks import PageSecrets

REPLIED = 0.70
FOLLOW_UP = 0.10
EDITED = 0.05
DELETED = 0.02
REDELIVERED = 0.02
EARLY = 0.01  # of edits, deletions and replies: delivered before their message


@dataclass
class Expected:
    """What a correct processing of the mix leaves, to compare with the database."""

    deliveries: int = 0  # distinct deliveries (re-deliveries are not stored twice)
    citizen_messages: int = 0
    native_replies: int = 0  # replies to a message that exists
    edits: int = 0  # messages edited at least once
    deletions: int = 0


@dataclass
class Mix:
    deliveries: list[Delivery]
    expected: Expected
    kinds: dict[str, int] = field(default_factory=dict)


@dataclass(order=True)
class _Item:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    body: dict[str, Any] = field(compare=False)
    page: PageSecrets = field(compare=False)


def realistic_mix(
    pages: list[PageSecrets], comments: int, *, end: datetime, days: int = 90, seed: int = 7
) -> Mix:
    """`comments` citizens' first messages on the VK `pages` and all that follows them."""
    rng = random.Random(seed)
    vk = [p for p in pages if p.platform == "vk"]
    if not vk:
        raise ValueError("the mix needs VK pages")
    items: list[_Item] = []
    seq = iter(range(10**9))
    expected = Expected()
    counters = {p.key: 10_000 for p in vk}
    posts = {p.key: 500 for p in vk}

    def add(at: datetime, kind: str, body: dict[str, Any], page: PageSecrets) -> None:
        if at < end:
            items.append(_Item(at, next(seq), kind, body, page))

    def next_id(page: PageSecrets) -> int:
        counters[page.key] += 1
        return counters[page.key]

    for _ in range(comments):
        page = rng.choice(vk)
        at = end - timedelta(days=rng.uniform(0, days))
        at = at.replace(hour=min(23, max(0, int(rng.gauss(8, 4)))))  # daytime, UTC+5
        if at >= end:
            at = end - timedelta(minutes=rng.uniform(1, 60))
        citizen = str(rng.randint(100_000_000, 899_999_999))
        comment = next_id(page)
        text = rng.choice(QUESTIONS)
        private = rng.random() < 0.25
        if rng.random() < 0.2:
            posts[page.key] += 1
        post = posts[page.key]
        if private:
            add(at, "message", d.vk_message(page, citizen, comment, text, at), page)
        else:
            add(at, "comment", d.vk_comment(page, citizen, post, comment, text, at), page)
        expected.citizen_messages += 1
        if rng.random() < EDITED:
            when = at + timedelta(minutes=rng.uniform(1, 30))
            new = text + " (исправлено)"
            body = (
                d.vk_message(page, citizen, comment, new, when, edited=True)
                if private
                else d.vk_comment(page, citizen, post, comment, new, when, kind="wall_reply_edit")
            )
            add(when, "edit", body, page)
            expected.edits += when < end
        if rng.random() < FOLLOW_UP:
            when = at + timedelta(minutes=rng.uniform(10, 600))
            follow, again = next_id(page), rng.choice(FOLLOW_UPS)
            body = (
                d.vk_message(page, citizen, follow, again, when)
                if private
                else d.vk_comment(page, citizen, post, follow, again, when)
            )
            add(when, "follow_up", body, page)
            expected.citizen_messages += when < end
        if rng.random() < REPLIED:
            # A few minutes to three days later, most within a working day.
            when = at + timedelta(minutes=min(3 * 24 * 60, 5 + rng.lognormvariate(5, 1.3)))
            reply, answer = next_id(page), rng.choice(REPLIES["default"])
            body = (
                d.vk_page_message(page, citizen, reply, answer, when)
                if private
                else d.vk_page_comment(page, citizen, post, reply, comment, answer, when)
            )
            add(when, "page_reply", body, page)
            expected.native_replies += when < end
        elif not private and rng.random() < DELETED / (1 - REPLIED):
            when = at + timedelta(minutes=rng.uniform(5, 240))
            add(when, "delete", d.vk_comment_deleted(page, citizen, post, comment), page)
            expected.deletions += when < end

    items.sort()
    _deliver_some_early(items, rng)
    out: list[Delivery] = []
    kinds: dict[str, int] = {}
    for item in items:
        delivery = d.signed(item.page, item.body, item.at)
        out.append(delivery)
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
        if rng.random() < REDELIVERED:  # the platform sends it again a moment later
            out.append(delivery)
            kinds["redelivery"] = kinds.get("redelivery", 0) + 1
    expected.deliveries = len(items)
    return Mix(out, expected, kinds)


def _deliver_some_early(items: list[_Item], rng: random.Random) -> None:
    """Move a few edits, deletions and replies a little ahead of where they belong, some
    before their message (VK delivers in parallel and retries; nothing orders them).
    A community's reply in a private conversation names no message: one before the
    citizen's first message waits a moment for it (docs/scaling.md)."""
    for n in range(len(items)):
        if items[n].kind in ("edit", "delete", "page_reply") and rng.random() < EARLY:
            back = min(n, rng.randint(1, 40))
            items.insert(n - back, items.pop(n))


def load_pages(engine: sa.Engine, cipher: Cipher) -> list[tuple[int, PageSecrets]]:
    """(page id, secrets) of the active pages, as the receiver knows them."""
    with Session(engine) as session:
        pages = session.exec(
            select(Page).where(col(Page.is_active).is_(True)).order_by(col(Page.id))
        ).all()
        return [(p.id or 0, directory_service.page_secrets(p, cipher)) for p in pages]


def stored(
    by_key: dict[str, tuple[int, PageSecrets]], delivery: Delivery, received: datetime
) -> writer.Delivery:
    """A generated delivery verified by the receiver's own check, ready for its writer.

    `by_key`: page key -> (page id, secrets), from `load_pages`."""
    page_id, secrets = by_key[delivery.key]
    known = KnownPage(id=page_id, platform=secrets.platform, secrets=secrets, active=True)
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    checked = check(known, headers, delivery.body, received)
    if not isinstance(checked, tuple):
        raise RuntimeError(f"generated delivery refused: {checked.status_code}")
    return checked[0]


# --- the check ---------------------------------------------------------------------------

_COUNTS = {
    "stored": "select count(*) from inbound_event",
    "processed": "select count(*) from inbound_event where status in ('processed', 'ignored')",
    "pending": "select count(*) from inbound_event where status = 'pending'",
    "failed": "select count(*) from inbound_event where status = 'failed'",
    "waiting": "select count(*) from inbound_event where status = 'waiting'",
    "orphaned": "select count(*) from inbound_event where status = 'orphaned'",
    "citizen_messages": "select count(*) from message where source = 'citizen'",
    "native_replies": "select count(*) from message where source = 'native'",
    "edits": "select count(*) from message where edited_at is not null",
    "deletions": "select count(*) from message where deleted_at is not null",
    "questions": "select count(*) from question",
    # The SLA alerts the run raised (the work of overdue arrivals, which processing now
    # raises as it writes them): their timeline entries and in-app alerts.
    "breaches": "select count(*) from timeline_entry where kind = 'sla.breached'",
    "escalations": "select count(*) from timeline_entry where kind = 'sla.escalated'",
    "alerts": "select count(*) from notification",
    # Citizen messages of one question applied against the order their deliveries were
    # received in (a follow-up before the message it follows). Received, not written:
    # deliveries sent side by side may arrive in either order, as VK's do.
    "out_of_order": """
        select count(*) from message m join message n
          on n.question_id = m.question_id and n.source = 'citizen' and m.source = 'citizen'
         and n.id > m.id and n.received_at < m.received_at""",
    "duplicated": """
        select count(*) from (select page_id, external_id from message
         where external_id is not null group by page_id, external_id having count(*) > 1) t""",
}


def applied(engine: sa.Engine, expected: Expected) -> tuple[bool, str]:
    """Was every acknowledged delivery applied exactly once, in order per thread?"""
    with engine.connect() as conn:
        got = {name: conn.execute(sa.text(sql)).scalar_one() for name, sql in _COUNTS.items()}
    ok = (
        got["stored"] == expected.deliveries
        and got["processed"] == expected.deliveries
        and got["citizen_messages"] == expected.citizen_messages
        and got["native_replies"] == expected.native_replies
        and got["edits"] == expected.edits
        and got["deletions"] == expected.deletions
        and got["out_of_order"] == 0
        and got["duplicated"] == 0
    )
    line = (
        f"{got['processed']}/{expected.deliveries} deliveries processed "
        f"({got['pending']} pending, {got['waiting']} waiting, {got['failed']} failed, "
        f"{got['orphaned']} orphaned); citizen messages {got['citizen_messages']}/"
        f"{expected.citizen_messages}, page replies {got['native_replies']}/"
        f"{expected.native_replies}, edits {got['edits']}/{expected.edits}, deletions "
        f"{got['deletions']}/{expected.deletions}; {got['out_of_order']} out of order, "
        f"{got['duplicated']} twice; {got['questions']} questions; SLA: "
        f"{got['breaches']} breaches, {got['escalations']} escalations, "
        f"{got['alerts']} in-app alerts"
    )
    return ok, ("exactly once, in order: yes — " if ok else "exactly once, in order: NO — ") + line
