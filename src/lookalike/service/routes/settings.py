"""``GET /v1/settings``: the thresholds and limits this service judges with, so that a client can
tell which settings file a verdict came from."""

from __future__ import annotations

from fastapi import APIRouter

from lookalike.service.auth import State, Tenant
from lookalike.service.schemas import SettingsOut, ThresholdsOut, error_responses

router = APIRouter(prefix="/v1/settings", tags=["settings"], responses=error_responses(401, 422, 429))


@router.get("")
def settings(tenant: Tenant, state: State) -> SettingsOut:
    """The thresholds every verdict is judged by, and the limits on what is read."""
    s = state.settings
    return SettingsOut(
        thresholds=ThresholdsOut(**state.index.thresholds.to_dict()), top=s.top,
        max_upload_bytes=s.max_upload_bytes, max_pixels=s.max_pixels, learned=state.learned_model,
    )  # fmt: skip
