"""One question of a region's year (`app.demo.region_year`) at a time, with what the
services would have left behind: what the citizen wrote, whether and how the page
answered (natively or through Otklik), dismissals and transfers, and the state all that
leaves the question's SLA clocks in. Its rows are made by `app.demo.region_year_rows`.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.demo import phrases
from app.demo.region_year_rows import Ids, Intended, Rows, YearPage
from app.demo.region_year_writer import Writer
from app.questions.models import (
    Direction,
    MessageSource,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Priority,
    Question,
    QuestionKind,
    QuestionStatus,
)
from app.sla import norms, policies
from app.sla.models import ClockState, Target

# What citizens write: (classification, share). Questions and complaints need answers.
CLASSES = (("question", 0.70), ("complaint", 0.12), ("gratitude", 0.09), ("spam", 0.04))
ON_TIME_SHARE = 0.86
OTKLIK_SHARE = 0.45
DISMISS_SHARE = 0.04
TRANSFER_SHARE = 0.04
FORGOTTEN_SHARE = 0.003
WAITING_SHARE = 0.15  # of answered questions of the last two weeks
DISMISS_REASONS = ("off_topic", "duplicate", "formal_appeal", "other")
TRANSFER_REASONS = [reason for _, _, reason in phrases.TRANSFERS]
_MINUTE = timedelta(minutes=1)


class Maker(Rows):
    """Makes the questions one by one (`question`), the dice thrown by `rng`."""

    def __init__(
        self,
        session: Session,
        rng: random.Random,
        now: datetime,
        out: Intended,
        ids: Ids,
        writer: Writer,
        operators: dict[int, tuple[int, str]],
        institution_ids: list[int],
        tz_of: dict[int, str],
        norms_of: dict[int, norms.Norms],
    ) -> None:
        self.session = session
        self.bases: dict[tuple[int | None, str], policies.Basis] = {}
        self.rng = rng
        self.now = now
        super().__init__(ids, writer, out)
        self.operators = operators
        self.institution_ids = institution_ids
        self.tz_of = tz_of
        self.norms_of = norms_of

    def _basis(self, norm: norms.Norms, tz: str) -> policies.Basis:
        key = (norm.id, tz)
        if key not in self.bases:
            self.bases[key] = policies.basis(
                self.session,
                working_time=norm.working_time,
                calendar_id=norm.calendar_id,
                timezone=tz,
            )
        return self.bases[key]

    def question(self, page: YearPage, created: datetime, *, forgotten: bool) -> None:
        rng, out = self.rng, self.out
        qid = self.ids.question
        self.ids.question += 1
        institution_id = page.institution_id
        x = rng.random()
        classification = "other"
        for name, share in CLASSES:
            if x < share:
                classification = name
                break
            x -= share
        if forgotten:
            classification = "question"
        answerable = classification in ("question", "complaint")
        if classification == "question":
            text = page.topics[rng.randrange(len(page.topics))]
        elif classification == "complaint":
            text = "Жалоба: " + page.topics[rng.randrange(len(page.topics))]
        elif classification == "gratitude":
            text = rng.choice(phrases.THANKS + phrases.REACTIONS)
        elif classification == "spam":
            text = rng.choice(phrases.SPAM)
        else:
            text = rng.choice(phrases.OTHER)
        first, last = phrases.NAMES[rng.randrange(len(phrases.NAMES))]
        citizen_id = str(100000 + rng.randrange(5_000_000))
        thread = f"post:{page.id}:{int(created.timestamp()) // 86400}:{rng.randrange(3)}"
        norm = self.norms_of[institution_id]
        tz = self.tz_of[institution_id]
        basis = self._basis(norm, tz)
        q: dict[str, Any] = {
            "id": qid,
            "page_id": page.id,
            "institution_id": institution_id,
            "platform": page.platform,
            "kind": QuestionKind.comment,
            "status": QuestionStatus.new,
            "classification": classification,
            "classification_rule": "vocabulary",
            "classification_note": "",
            "category_id": None,
            "priority": Priority.normal,
            "citizen_platform_id": citizen_id,
            "citizen_name": f"{first} {last}",
            "thread_key": thread,
            "text": text,
            "permalink": None,
            "created_at": created,
            "received_at": created + timedelta(seconds=1 + rng.randrange(5)),
            "updated_at": created,
            "last_citizen_at": created,
            "first_response_at": None,
            "closed_at": None,
            "assignee_id": None,
            "linked_question_id": None,
            "dismiss_reason": None,
            "dismiss_note": None,
            "policy_id": norm.id,
            "due_at": None,
            "interim_expected_at": None,
            "routed_by_rule_id": None,
        }
        self._message(qid, page, created, Direction.inbound, MessageSource.citizen, citizen_id,
                      f"{first} {last}", text, f"c{qid}", None)  # fmt: skip
        self._timeline(qid, created, "created", {"platform": page.platform})
        clocks: list[dict[str, Any]] = []
        if answerable:
            clocks = self._answerable(q, page, created, basis, norm, tz, forgotten)
        else:
            self._no_answer(q, page, created)
        self.w[Question].append(q)
        out.questions += 1
        status = str(q["status"])
        out.by_status[status] = out.by_status.get(status, 0) + 1
        if q["status"] in (
            QuestionStatus.new,
            QuestionStatus.in_progress,
            QuestionStatus.waiting_citizen,
        ):
            out.open += 1
            if forgotten:
                out.hot_open += 1
        if q["status"] == QuestionStatus.dismissed:
            out.dismissed += 1
        if q["first_response_at"] is not None:
            out.answered += 1
        if any(
            c["breached_at"] is not None or c["state"] in (ClockState.breached, ClockState.missed)
            for c in clocks
        ):
            out.breached += 1
        if clocks and clocks[0]["state"] in _JUDGED:
            out.judged += 1
            out.on_time += clocks[0]["state"] == ClockState.met
        for c in clocks:
            state = str(c["state"])
            out.by_state[state] = out.by_state.get(state, 0) + 1

    # -- questions that need an answer ------------------------------------------------

    def _answerable(
        self,
        q: dict[str, Any],
        page: YearPage,
        created: datetime,
        basis: policies.Basis,
        norm: norms.Norms,
        tz: str,
        forgotten: bool,
    ) -> list[dict[str, Any]]:
        rng, now, out = self.rng, self.now, self.out
        qid = q["id"]
        target = norm.first_response_minutes
        first = self._clock(qid, Target.first_response, created, target, basis, norm, tz)
        clocks = [first]
        final = None
        if norm.final_answer_minutes:
            final = self._clock(
                qid, Target.final_answer, created, norm.final_answer_minutes, basis, norm, tz
            )
            clocks.append(final)
        # When the page answers, in working minutes after the citizen wrote.
        if rng.random() < ON_TIME_SHARE:
            working = math.exp(rng.uniform(math.log(3), math.log(target * 0.97)))
        else:
            working = target + math.exp(rng.uniform(math.log(5), math.log(target * 5)))
        answer_at = basis.add(created, working).replace(microsecond=0)
        working = basis.between(created, answer_at)
        dismissed_at = None
        if not forgotten and rng.random() < DISMISS_SHARE:
            dismissed_at = created + timedelta(minutes=rng.uniform(10, 3 * 24 * 60))
            if dismissed_at >= now:
                dismissed_at = None
        unanswered = forgotten or answer_at >= now or rng.random() < FORGOTTEN_SHARE
        end = now
        transfer_at = None
        if dismissed_at is not None:
            end = dismissed_at
        elif not unanswered:
            end = answer_at
        if rng.random() < TRANSFER_SHARE and len(self.institution_ids) > 1:
            transfer_at = created + (end - created) * rng.uniform(0.1, 0.6)
            transfer_at = transfer_at.replace(microsecond=0)
            self._transfer(q, created, transfer_at, basis)
        if dismissed_at is not None:
            reason = DISMISS_REASONS[rng.randrange(len(DISMISS_REASONS))]
            q.update(
                status=QuestionStatus.dismissed,
                dismiss_reason=reason,
                dismiss_note="Ответили в официальном порядке" if reason == "other" else None,
                closed_at=dismissed_at,
                updated_at=dismissed_at,
            )
            self._timeline(qid, dismissed_at, "dismissed",
                           {"reason": reason, "note": q["dismiss_note"]})  # fmt: skip
            for clock in clocks:
                self._settle_by(clock, dismissed_at, qid)
                clock["state"] = ClockState.none
                clock["details"] = {**clock["details"], "stopped": "dismissed"}
                clock["check_at"] = None
            return clocks
        if unanswered:
            q["status"] = QuestionStatus.in_progress if rng.random() < 0.3 else QuestionStatus.new
            for clock in clocks:
                self._settle_by(clock, now, qid)
            q["due_at"] = min(c["due_at"] for c in clocks)
            q["updated_at"] = transfer_at or created
            return clocks
        # Answered: natively on the platform or through Otklik.
        otklik = rng.random() < OTKLIK_SHARE
        wall = (answer_at - created) / _MINUTE
        first.update(
            state=ClockState.met if answer_at <= first["due_at"] else ClockState.missed,
            done_at=answer_at,
            working_minutes=working,
            wall_minutes=wall,
            check_at=None,
        )
        if first["state"] == ClockState.missed:
            self._breach(first, qid)
        elif answer_at >= first["warn_at"]:
            first["warned_at"] = first["warn_at"]
        out.working.append(working)
        out.wall.append(wall)
        q["first_response_at"] = answer_at
        q["updated_at"] = answer_at
        self._reply(q, page, answer_at, otklik)
        if otklik:
            out.answered_otklik += 1
        recent = now - answer_at < timedelta(days=14)
        if final is not None and recent and rng.random() < WAITING_SHARE:
            # A clarifying answer: waiting for the citizen, the final clock paused.
            self._settle_by(final, answer_at, qid)
            if final["state"] in (ClockState.running, ClockState.warning):
                final["details"] = {**final["details"], "state_before_pause": str(final["state"])}
                final.update(state=ClockState.paused, paused_at=answer_at, check_at=None)
            q["status"] = QuestionStatus.waiting_citizen
            q["due_at"] = min((c["due_at"] for c in clocks if c["state"] in _ACTIVE), default=None)
            return clocks
        if final is not None:
            final_wall = wall
            final.update(
                state=ClockState.met if answer_at <= final["due_at"] else ClockState.missed,
                done_at=answer_at,
                working_minutes=working,
                wall_minutes=final_wall,
                check_at=None,
            )
            if final["state"] == ClockState.missed:
                self._breach(final, qid)
            elif answer_at >= final["warn_at"]:
                final["warned_at"] = final["warn_at"]
        if now - answer_at > timedelta(days=7) and rng.random() < 0.6:
            closed = answer_at + timedelta(days=rng.uniform(1, 6))
            q.update(status=QuestionStatus.closed, closed_at=closed, updated_at=closed)
        else:
            q["status"] = QuestionStatus.answered
        return clocks

    def _transfer(
        self, q: dict[str, Any], created: datetime, at: datetime, basis: policies.Basis
    ) -> None:
        rng = self.rng
        source = q["institution_id"]
        while source == q["institution_id"]:
            source = self.institution_ids[rng.randrange(len(self.institution_ids))]
        data = {
            "from_institution_id": source,
            "to_institution_id": q["institution_id"],
            "reason": TRANSFER_REASONS[rng.randrange(len(TRANSFER_REASONS))],
            "by_user_id": None,
            "by_name": "Оператор",
            "held_since": created.isoformat(),
            "held_wall_minutes": round((at - created) / _MINUTE, 1),
            "held_working_minutes": round(basis.between(created, at), 1),
        }
        self._timeline(q["id"], at, "transferred", data)
        self.out.transferred += 1

    def _reply(self, q: dict[str, Any], page: YearPage, at: datetime, otklik: bool) -> None:
        qid = q["id"]
        text = page.replies[self.rng.randrange(len(page.replies))]
        if otklik:
            user_id, name = self.operators.get(q["institution_id"], (None, "Оператор"))
            message_id = self._message(qid, page, at, Direction.outbound, MessageSource.otklik,
                                       f"user:{user_id}" if user_id else "user:",
                                       name, text, f"o{qid}", user_id)  # fmt: skip
            self.w[OutboxItem].append(
                {
                    "id": self.ids.outbox,
                    "kind": OutboxKind.reply,
                    "question_id": qid,
                    "message_id": message_id,
                    "page_id": page.id,
                    "subscription_id": None,
                    "payload": {"text": text, "thread_key": q["thread_key"], "interim": False},
                    "status": OutboxStatus.sent,
                    "attempts": 1,
                    "next_attempt_at": None,
                    "last_error": None,
                    "error_code": None,
                    "error_message": None,
                    "external_id": f"o{qid}",
                    "created_at": at - timedelta(seconds=20),
                    "created_by": user_id,
                    "sent_at": at,
                }
            )
            data = {"message_id": message_id, "outbox_item_id": self.ids.outbox,
                    "source": "otklik", "external_id": f"o{qid}", "interim": False}  # fmt: skip
            self.ids.outbox += 1
            self.out.outbox += 1
        else:
            message_id = self._message(qid, page, at, Direction.outbound, MessageSource.native,
                                       page.external_id, "", text, f"n{qid}", None)  # fmt: skip
            data = {"source": "native", "message_id": message_id, "author_id": page.external_id}
        self._timeline(qid, at, "response", data)

    # -- gratitude, spam, reactions -------------------------------------------------------

    def _no_answer(self, q: dict[str, Any], page: YearPage, created: datetime) -> None:
        rng, now = self.rng, self.now
        if now - created < timedelta(days=2):
            return  # still in the «no answer needed» tab
        x = rng.random()
        if x < 0.7:
            at = created + timedelta(hours=rng.uniform(1, 40))
            reason = {"gratitude": "gratitude", "spam": "spam"}.get(q["classification"], "other")
            note = "Не вопрос" if reason == "other" else None
            q.update(status=QuestionStatus.dismissed, dismiss_reason=reason, dismiss_note=note,
                     closed_at=at, updated_at=at)  # fmt: skip
            self._timeline(q["id"], at, "dismissed", {"reason": reason, "note": note})
        elif x < 0.9 and q["classification"] == "gratitude":
            at = created + timedelta(hours=rng.uniform(1, 20))
            q.update(status=QuestionStatus.answered, first_response_at=at, updated_at=at)
            mid = self._message(q["id"], page, at, Direction.outbound, MessageSource.native,
                                page.external_id, "", phrases.CLOSING, f"n{q['id']}", None)  # fmt: skip
            data = {"source": "native", "message_id": mid, "author_id": page.external_id}
            self._timeline(q["id"], at, "response", data)


_ACTIVE = (ClockState.running, ClockState.warning, ClockState.breached)
_JUDGED = (ClockState.met, ClockState.missed, ClockState.breached)
