"""An executor's own settings (``GREENAI_SLURM_*``, ``GREENAI_K8S_*``) from an environment
mapping alone, as greenai's settings take one: tests pass a dict, and a bad value is a
``ConfigError`` naming the variable, not a pydantic traceback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from greenai.core.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)


def prefixed_settings(cls: type[S], prefix: str, env: Mapping[str, str], what: str) -> S:
    """``cls`` from the names of ``env`` that start with ``prefix`` (``GREENAI_K8S_NAMESPACE``
    -> ``namespace``), never from the process environment; ``what`` names them in errors."""
    values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}

    class _FromMapping(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    try:
        loaded = _FromMapping(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{prefix}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{what}: {problems}") from exc
    return cls.model_construct(**{name: getattr(loaded, name) for name in cls.model_fields})
