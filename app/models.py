"""Every room's tables, imported in one place for Alembic, the app factory and the tests."""

from app.answering import models as answering_models
from app.auth import models as auth_models
from app.directory import models as directory_models
from app.intake import models as intake_models
from app.jobs import models as jobs_models
from app.outbox import models as outbox_models
from app.questions import models as questions_models
from app.reports import models as reports_models
from app.routing import models as routing_models
from app.sla import models as sla_models

__all__ = [
    "answering_models",
    "auth_models",
    "directory_models",
    "intake_models",
    "jobs_models",
    "outbox_models",
    "questions_models",
    "reports_models",
    "routing_models",
    "sla_models",
]
