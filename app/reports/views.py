"""The reports' routes: the JSON API and exports (`app.reports.api`) and the
supervisor's pages."""

from __future__ import annotations

from fastapi import APIRouter

from app.reports import api

router = APIRouter()
router.include_router(api.router)
