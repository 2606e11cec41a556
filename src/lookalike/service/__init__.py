"""``lookalike serve``: the check-before-store HTTP service (FastAPI), built by ``create_app(settings)``.

Layout: ``settings`` (validated, frozen), ``errors`` (every error to an HTTP
status, in one place), ``schemas`` (API models, separate from store rows),
``auth`` (keys and rate limits), ``storage`` (files on disk), ``fetch``
(SSRF-safe URL ingestion), ``uploads`` (check-then-store under a per-tenant
lock), ``routes/`` (one router per resource) and ``app`` (the factory).
"""

from lookalike.config import ServiceSettings
from lookalike.service.app import create_app

__all__ = ["ServiceSettings", "create_app"]
