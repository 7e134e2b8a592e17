"""What each demo question lives through, drawn at random like a real region's week.

Arrivals come in the daytime, more on weekdays, more to the institutions that have a
demo operator. About one in ten needs no answer (thanks, reactions, spam); a few are
asked of the wrong institution and transferred. Of the rest most are answered within
the first-response target (natively on the platform or through Otklik), some late, a
few forgotten; some get a clarification and wait for the citizen, some are dismissed,
some get an interim answer first; follow-ups, edits and deletions happen on the way.
Each demo operator's institution also gets a set of open questions in every SLA state
at the moment the history ends (`_scenarios`).
"""

from __future__ import annotations

import functools
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel import Session, col, select

from app.answering.models import StatusChange
from app.auth.models import Role, User, UserInstitution
from app.demo import deliveries as d
from app.demo.acts import Acts, PageRef, Thread
from app.demo.deliveries import Citizen
from app.demo.phrases import (
    CLARIFICATIONS,
    CLARIFIED,
    CLOSING,
    FOLLOW_UPS,
    INTERIM,
    NAMES,
    NOTES,
    OTHER,
    REACTIONS,
    REPLIES,
    SPAM,
    THANKS,
    TOPICS,
    TRANSFERS,
)
from app.demo.platforms import Outcome
from app.demo.traffic import business_moments

TARGET = 480  # the first-response target of the built-in policy, working minutes
OPERATOR_WEIGHT = 5  # institutions with a demo operator get this many times the traffic


class Timeline(Protocol):
    now: datetime
    rng: random.Random
    acts: Acts

    def at(self, when: datetime, run: Callable[[datetime], object]) -> None: ...
    def working_later(self, start: datetime, minutes: float) -> datetime: ...
    def working_ago(self, minutes: float) -> datetime: ...


class Story:
    def __init__(self, history: Timeline, pages: list[PageRef]) -> None:
        self.h = history
        self.rng = history.rng
        self.acts = history.acts
        self.pages: dict[int, list[PageRef]] = defaultdict(list)
        for page in pages:
            self.pages[page.institution_id].append(page)
        self.kinds: dict[str, list[int]] = defaultdict(list)
        for institution_id, own in self.pages.items():
            self.kinds[own[0].kind].append(institution_id)
        with Session(self.acts.engine) as session:
            self.operated = sorted(
                set(
                    session.exec(
                        select(UserInstitution.institution_id)
                        .join(User, col(User.id) == col(UserInstitution.user_id))
                        .where(col(User.role) == Role.operator)
                    ).all()
                )
            )
        self._posts: dict[int, int] = defaultdict(lambda: 1000)
        self._retrying: Thread | None = None
        self.questions = 0

    # --- planning ----------------------------------------------------------------------------

    def plan(self, days: int, per_day: int) -> None:
        weights = [OPERATOR_WEIGHT if i in self.operated else 1 for i in self.pages]
        institutions = list(self.pages)
        for moment in business_moments(days, per_day, self.h.now, self.rng):
            (institution_id,) = self.rng.choices(institutions, weights)
            self.h.at(moment, functools.partial(self._arrive, institution_id))
        for institution_id in self.operated:
            self._scenarios(institution_id)

    def finish(self) -> None:
        """The last act: a reply the platform cannot be reached for, retried from now on."""
        if self._retrying is not None:
            text = self._reply_text(self._retrying)
            self.acts.reply(
                self._retrying, self.h.now - timedelta(minutes=2), text, outcome=Outcome.unreachable
            )

    # --- arrivals --------------------------------------------------------------------------------

    def _arrive(self, institution_id: int, at: datetime) -> None:
        """Someone writes to the institution at `at`."""
        page = self.rng.choice(self.pages[institution_id])
        roll = self.rng.random()
        if roll < 0.10:
            self._no_answer(page, at)
            return
        if roll < 0.14 and self._transferred(page, at):
            return
        thread = self._open(
            page,
            self.rng.choice(TOPICS[page.kind] if page.kind in TOPICS else TOPICS["municipality"]),
            at,
        )
        if thread is not None:
            self._live(thread, at)

    def _open(
        self, page: PageRef, text: str, at: datetime, *, sticker: bool = False
    ) -> Thread | None:
        """A citizen starts a thread on `page`: a comment under a post, or a private message."""
        first, last = self.rng.choice(NAMES)
        citizen = Citizen(str(self.rng.randint(100_000_000, 899_999_999)), first, last)
        private = page.platform in ("ok", "max") or self.rng.random() < 0.35
        if page.platform == "vk" and not private and self.rng.random() < 0.3:
            self._posts[page.id] += 1
        post = 0 if private else self._posts[page.id]
        thread = Thread(page, citizen, private, post, self.acts.next_id(), page.institution_id)
        self.acts.citizen_writes(thread, self._body(thread, text, at, sticker=sticker), at)
        if thread.question_id is None:
            return None
        self.questions += 1
        return thread

    def _body(
        self,
        t: Thread,
        text: str,
        at: datetime,
        *,
        message_id: int | None = None,
        sticker: bool = False,
    ) -> dict[str, object]:
        """The platform event of the citizen's message `message_id` (default: the first)."""
        n = t.object_id if message_id is None else message_id
        platform, page, c = t.page.platform, t.page.secrets, t.citizen
        if platform == "vk":
            if t.private:
                return d.vk_message(page, c.id, n, text, at)
            return d.vk_comment(page, c.id, t.post, n, text, at)
        if platform == "telegram":
            if t.private:
                return d.tg_private(self.acts.next_id(), c, n, text, at)
            return d.tg_comment(page, self.acts.next_id(), c, n, t.post, text, at, sticker=sticker)
        if platform == "ok":
            return d.ok_message(c, n, text, at)
        return d.max_message(c, n, text, at)

    def _no_answer(self, page: PageRef, at: datetime) -> None:
        roll = self.rng.random()
        pool = (
            THANKS if roll < 0.4 else REACTIONS if roll < 0.75 else SPAM if roll < 0.85 else OTHER
        )
        text = self.rng.choice(pool)
        sticker = pool is REACTIONS and page.platform == "telegram"
        thread = self._open(page, text, at, sticker=sticker)
        if thread is None:
            return
        reason = "spam" if pool is SPAM else "gratitude" if pool is not OTHER else None
        if reason and self.rng.random() < (0.6 if reason == "spam" else 0.3):
            when = self.h.working_later(at, self.rng.uniform(20, 240))
            self.h.at(when, lambda w: self.acts.act(thread, w, "dismiss", reason=reason, note=None))

    def _transferred(self, page: PageRef, at: datetime) -> bool:
        """A question asked of the wrong institution, which sends it where it belongs."""
        options = [
            (dst, why) for src, dst, why in TRANSFERS if src == page.kind and self.kinds[dst]
        ]
        if not options:
            return False
        kind, reason = self.rng.choice(options)
        near = [i for i in self.kinds[kind] if self.pages[i][0].territory_id == page.territory_id]
        target = self.rng.choice(near or self.kinds[kind])
        thread = self._open(page, self.rng.choice(TOPICS[kind]), at)
        if thread is None:
            return True
        when = self.h.working_later(at, self.rng.uniform(15, 120))
        self.h.at(
            when,
            lambda w: self.acts.act(thread, w, "transfer", institution_id=target, reason=reason),
        )
        answer = self.h.working_later(at, TARGET * self.rng.uniform(0.35, 0.9))
        self.h.at(answer, lambda w: self._answer(thread, w, otklik=True))
        return True

    # --- a question's life ---------------------------------------------------------------------

    def _live(self, t: Thread, at: datetime) -> None:
        roll = self.rng.random()
        quick = self.h.working_later(at, TARGET * self._share())
        if t.page.platform == "vk" and self.rng.random() < 0.06:
            edit = at + timedelta(minutes=self.rng.uniform(2, 15))
            self.h.at(edit, lambda w: self._edit(t, w))
        if t.page.platform == "vk" and not t.private and roll < 0.02:
            gone = at + timedelta(minutes=self.rng.uniform(5, 90))
            self.h.at(gone, lambda w: self._delete(t, w))
        elif roll < 0.06:
            if self.h.now - at < timedelta(days=4):  # forgotten: breaching now
                if self.rng.random() < 0.5:
                    self.h.at(
                        self.h.working_later(at, TARGET * 1.2),
                        lambda w: self._follow_up(t, w, answer=False),
                    )
                return
            late = self.h.working_later(at, TARGET * self.rng.uniform(1.1, 2.2))
            self.h.at(late, lambda w: self._answer(t, w))
        elif roll < 0.10:
            self.h.at(
                self.h.working_later(at, TARGET * self.rng.uniform(1.05, 1.8)),
                lambda w: self._answer(t, w),
            )
        elif roll < 0.15:
            self.h.at(quick, lambda w: self._wait(t, w))
        elif roll < 0.18:
            reason = self.rng.choice(["duplicate", "off_topic", "formal_appeal"])
            note = "Зарегистрировано как обращение № 1842" if reason == "formal_appeal" else None
            self.h.at(quick, lambda w: self.acts.act(t, w, "dismiss", reason=reason, note=note))
        elif roll < 0.22 and t.page.platform in ("vk", "telegram") and not t.private:
            self.h.at(quick, lambda w: self._refused(t, w))
        elif roll < 0.27:
            self.h.at(quick, lambda w: self._interim(t, w))
        else:
            self.h.at(quick, lambda w: self._answer(t, w))

    def _share(self) -> float:
        """How much of the target a timely answer takes: mostly quick, sometimes close."""
        return (
            self.rng.uniform(0.03, 0.45)
            if self.rng.random() < 0.75
            else self.rng.uniform(0.45, 0.95)
        )

    def _reply_text(self, t: Thread) -> str:
        return self.rng.choice(REPLIES.get(t.page.kind, REPLIES["default"]))

    def _answer(
        self, t: Thread, at: datetime, *, otklik: bool | None = None, then: bool = True
    ) -> None:
        """The page answers: natively on the platform, or through Otklik; then perhaps
        a follow-up of the citizen, a note, or the question closed."""
        native = t.page.platform in ("vk", "telegram") and not (
            t.page.platform == "telegram" and t.private
        )
        if otklik is None:
            otklik = not native or self.rng.random() < 0.45
        text = self._reply_text(t)
        if self.rng.random() < 0.05:
            self.acts.act(t, at - timedelta(minutes=3), "note", text=self.rng.choice(NOTES))
        if otklik:
            self.acts.reply(t, at, text, claim=self.rng.random() < 0.6)
        else:
            self._native(t, at, text)
        if not then:
            return
        roll = self.rng.random()
        if roll < 0.12:
            later = at + timedelta(hours=self.rng.uniform(1, 30))
            self.h.at(later, lambda w: self._follow_up(t, w))
        elif roll < 0.35:
            self.h.at(
                at + timedelta(days=self.rng.uniform(0.5, 2)), lambda w: self.acts.close(t, w)
            )

    def _native(self, t: Thread, at: datetime, text: str) -> None:
        """The page answers on the platform itself; the webhook brings it."""
        page, c, n = t.page, t.citizen, self.acts.next_id()
        if page.platform == "vk" and t.private:
            body = d.vk_page_message(page.secrets, c.id, n, text, at)
        elif page.platform == "vk":
            body = d.vk_page_comment(page.secrets, c.id, t.post, n, t.object_id, text, at)
        else:
            body = d.tg_page_reply(
                page.secrets, self.acts.next_id(), c, n, t.post, t.object_id, text, at
            )
        self.acts.deliver(page, body, at)
        self.acts.counts["native_reply"] += 1

    def _follow_up(
        self, t: Thread, at: datetime, *, answer: bool = True, text: str | None = None
    ) -> None:
        body = self._body(
            t, text or self.rng.choice(FOLLOW_UPS), at, message_id=self.acts.next_id()
        )
        self.acts.citizen_writes(t, body, at)
        self.acts.counts["follow_up"] += 1
        if answer:
            when = self.h.working_later(at, TARGET * self._share())
            self.h.at(when, lambda w: self._answer(t, w, then=False))

    def _edit(self, t: Thread, at: datetime) -> None:
        text = (
            self.rng.choice(TOPICS.get(t.page.kind, TOPICS["municipality"]))
            + " Дополню: вопрос срочный."
        )
        page, c = t.page.secrets, t.citizen
        if t.private:
            body = d.vk_message(page, c.id, t.object_id, text, at, edited=True)
        else:
            body = d.vk_comment(page, c.id, t.post, t.object_id, text, at, kind="wall_reply_edit")
        self.acts.deliver(t.page, body, at)
        self.acts.counts["edit"] += 1

    def _delete(self, t: Thread, at: datetime) -> None:
        self.acts.deliver(
            t.page, d.vk_comment_deleted(t.page.secrets, t.citizen.id, t.post, t.object_id), at
        )
        self.acts.counts["deleted"] += 1

    def _wait(self, t: Thread, at: datetime, *, clarified: bool | None = None) -> None:
        """A clarification asked; the question waits for the citizen, who may answer."""
        if not self.acts.reply(t, at, self.rng.choice(CLARIFICATIONS)):
            return
        self.acts.act(t, at + timedelta(minutes=1), "status", change=StatusChange.waiting_citizen)
        if clarified is None:
            clarified = self.rng.random() < 0.6
        if clarified:
            back = at + timedelta(hours=self.rng.uniform(2, 20))
            self.h.at(back, lambda w: self._follow_up(t, w, text=self.rng.choice(CLARIFIED)))

    def _refused(self, t: Thread, at: datetime) -> None:
        """The platform refuses Otklik's reply; the operator answers natively instead."""
        self.acts.reply(t, at, self._reply_text(t), outcome=Outcome.refused)
        self.h.at(
            at + timedelta(minutes=self.rng.uniform(20, 90)),
            lambda w: self._native(t, w, self._reply_text(t)),
        )

    def _interim(self, t: Thread, at: datetime) -> None:
        """An interim answer with a date for the final one, which comes a day before it."""
        until = at + timedelta(days=self.rng.uniform(2, 5))
        if self.acts.reply(t, at, INTERIM, interim_until=until):
            self.h.at(until - timedelta(days=1), lambda w: self.acts.reply(t, w, CLOSING))

    # --- the present of each demo operator ------------------------------------------------------

    def _scenarios(self, institution_id: int) -> None:
        """Open questions in every SLA state now, on the institution's VK page."""
        page = next(p for p in self.pages[institution_id] if p.platform == "vk")
        texts = TOPICS.get(page.kind, TOPICS["municipality"])

        def arrive(minutes: float, then: Callable[[Thread, datetime], None] | None = None) -> None:
            at = self.h.working_ago(minutes)
            text = self.rng.choice(texts)

            def run(w: datetime) -> None:
                thread = self._open(page, text, w)
                if thread is not None and then is not None:
                    then(thread, w)

            self.h.at(at, run)

        later = self.h.working_later
        arrive(self.rng.uniform(640, 900))  # breached, nobody answered
        arrive(
            self.rng.uniform(620, 700),
            lambda t, w: self.h.at(later(w, 600), lambda x: self._follow_up(t, x, answer=False)),
        )
        arrive(self.rng.uniform(385, 450))  # warning: three quarters of the target gone
        arrive(self.rng.uniform(60, 200))  # running
        arrive(self.rng.uniform(5, 30))  # just arrived
        arrive(
            280, lambda t, w: self.h.at(later(w, 25), lambda x: self._wait(t, x, clarified=False))
        )
        arrive(
            150,
            lambda t, w: self.h.at(
                later(w, 30),
                lambda x: self.acts.reply(t, x, self._reply_text(t), outcome=Outcome.refused),
            ),
        )
        arrive(240, lambda t, w: self.h.at(later(w, 60), lambda x: self._answer(t, x, then=False)))
        for text in ("Спасибо!", "👍"):
            self.h.at(
                self.h.working_ago(self.rng.uniform(10, 120)),
                functools.partial(self._open, page, text),
            )
        if self._retrying is None:
            at = self.h.working_ago(90)

            def keep(w: datetime) -> None:
                self._retrying = self._open(page, self.rng.choice(texts), w)

            self.h.at(at, keep)
