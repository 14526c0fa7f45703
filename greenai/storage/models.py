"""The database schema as SQLAlchemy 2 models; Alembic migrations are generated against these.

Only ``store.py`` queries them. Times are stored as timezone-aware UTC (``UTCDateTime`` turns
SQLite's naive text back into aware datetimes), JSON columns hold argv lists, env maps and
decision payloads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return stored_utc(value)


def stored_utc(value: datetime | str | None) -> datetime | None:
    """A stored time as ``UTCDateTime`` reads it, from the driver's own value (SQLite's text or
    a datetime): bulk reads call it directly, skipping two layers of type processing per value."""
    if value is None:
        return None
    if isinstance(value, str):
        try:  # SQLite's naive UTC text, read as UTC in one step
            parsed = datetime.fromisoformat(value + "+00:00")
        except ValueError:  # the text has an offset already
            parsed = None
        if parsed is not None and parsed.tzinfo is UTC:  # a bare date reads "+00:00" as a time
            return parsed
        value = datetime.fromisoformat(value)  # what SQLAlchemy's SQLite DATETIME does
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Job(Base):
    """One submitted job and where it is in its life (see ``JobState``)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    command: Mapped[list[str]] = mapped_column(JSON)
    cwd: Mapped[str | None] = mapped_column(Text)
    env: Mapped[dict[str, str] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    on_deadline: Mapped[str] = mapped_column(String(8))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_s: Mapped[float] = mapped_column(Float)
    max_runtime_s: Mapped[float | None] = mapped_column(Float)  # None: no limit
    gpus: Mapped[int] = mapped_column(Integer)
    interruptible: Mapped[bool] = mapped_column(Boolean)
    flexible: Mapped[bool] = mapped_column(Boolean, server_default=true())
    power_kw: Mapped[float] = mapped_column(Float, server_default="0")
    policy: Mapped[str | None] = mapped_column(String(32))
    threshold: Mapped[float | None] = mapped_column(Float)
    project: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(200))
    planned_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the decision behind it
    attempts: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    gpu_ids: Mapped[list[int] | None] = mapped_column(JSON)
    handle: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the executor's, of the run
    instance_id: Mapped[str | None] = mapped_column(String(36))  # the daemon that runs it
    log_path: Mapped[str | None] = mapped_column(Text)
    pause_signal: Mapped[str | None] = mapped_column(String(16))  # None: the daemon's
    pause_grace_s: Mapped[float | None] = mapped_column(Float)  # None: the daemon's
    pieces: Mapped[int] = mapped_column(Integer, server_default="0")  # launched; 0: runs whole
    ran_s: Mapped[float] = mapped_column(Float, server_default="0")  # by its finished pieces
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "state", "planned_start"),
        Index(None, "project"),
    )


class DecisionRow(Base):
    """One decision or lifecycle event of a job, with the transition it caused (if any)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(16), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class RunRow(Base):
    """One finished run of a job: the accounting summary behind its SCI evidence row."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    energy_kwh: Mapped[float | None] = mapped_column(Float)  # NULL: nobody measured it
    meter: Mapped[str] = mapped_column(String(64))
    actual_intensity: Mapped[float | None] = mapped_column(Float)
    operational_g: Mapped[float | None] = mapped_column(Float)
    embodied_g: Mapped[float | None] = mapped_column(Float)
    counterfactual_g: Mapped[float | None] = mapped_column(Float)
    saved_g: Mapped[float | None] = mapped_column(Float)
    delay_s: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)  # the SCI row's cells
    evidence_appended: Mapped[bool] = mapped_column(Boolean, server_default=true())


class Instance(Base):
    """A running daemon process: several may share one database (replicas)."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BudgetRow(Base):
    """A project's carbon budget: at most ``limit_g`` per ``period_s``, periods aligned from
    ``start``."""

    __tablename__ = "budgets"

    project: Mapped[str] = mapped_column(String(200), primary_key=True)
    limit_g: Mapped[float] = mapped_column(Float)
    period_s: Mapped[float] = mapped_column(Float)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GpuClaim(Base):
    """A GPU held by a running job on a host: one row per GPU, so two daemons on one host can
    never hand out the same GPU (the second claim breaks the primary key)."""

    __tablename__ = "gpu_claims"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    gpu_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
