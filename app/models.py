"""Every domain's tables, imported in one place for Alembic and the tests."""

from app.auth import models as auth_models
from app.directory import models as directory_models
from app.questions import models as inbox_models
from app.routing import models as routing_models
from app.sla import models as sla_models

__all__ = ["auth_models", "directory_models", "inbox_models", "routing_models", "sla_models"]
