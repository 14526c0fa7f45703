"""`greenai run --submit SCHEDULER`: the decision is greenai's, the run is the scheduler's
(``greenai.oneshot.slurm_submit``). Prints the scheduler's job id and the decision."""

from __future__ import annotations

import json

import typer

from greenai.core.errors import ConfigError
from greenai.evidence.decisions import encode_decision
from greenai.executors.base import parse_gpu_slots
from greenai.executors.local import parse_env_allow
from greenai.executors.slurm import SlurmExecutor
from greenai.executors.slurm_settings import SlurmSettings
from greenai.oneshot import session as wiring
from greenai.oneshot.flow import OneShot
from greenai.oneshot.slurm_submit import SCHEDULERS, submit_to_slurm


def submit_and_print(
    scheduler: str, session: wiring.Session, oneshot: OneShot, argv: list[str], as_json: bool
) -> None:
    if scheduler not in SCHEDULERS:
        raise ConfigError(f"submit: unknown {scheduler!r} (choose from {', '.join(SCHEDULERS)})")
    settings = session.settings
    executor = SlurmExecutor(
        SlurmSettings.from_env(), env_allow=parse_env_allow(settings.job_env_allow)
    )
    gpus = len(parse_gpu_slots(settings.gpus)) if settings.gpus else 0
    submitted = submit_to_slurm(
        oneshot,
        session.deps,
        argv,
        shell=settings.shell,
        gpus=gpus,
        runs_dir=settings.home / "runs",
        executor=executor,
    )
    if as_json:
        decision = json.loads(encode_decision(submitted.decision))
        begin = submitted.begin.isoformat()
        out = {"slurm_job_id": submitted.slurm_job_id, "begin": begin, "decision": decision}
        typer.echo(json.dumps(out))
        return
    typer.echo(submitted.slurm_job_id)
    typer.echo(
        f"greenai: slurm job {submitted.slurm_job_id} begins "
        f"{submitted.begin.isoformat(timespec='seconds')}: "
        f"{submitted.decision.action.value}: {submitted.decision.reason}",
        err=True,
    )
