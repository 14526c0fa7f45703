"""The REST API (FastAPI): ``create_app(ApiDeps(...))``."""

from greenai.api.app import create_app
from greenai.api.deps import ApiDeps

__all__ = ["ApiDeps", "create_app"]
