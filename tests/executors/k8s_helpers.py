"""Kubernetes executors pointed at the loopback fake API server, closed at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from greenai.core.time import Clock, SystemClock
from greenai.executors.base import Launch
from greenai.executors.kubernetes import KubernetesExecutor
from greenai.executors.kubernetes_config import KubernetesSettings, api_client
from tests.executors.k8s_server import FakeKubernetes

IMAGE = "registry.example.com/train:1.4"


class KubeRuns:
    """Executors over one fake cluster and launches in one folder; ``close`` closes them."""

    def __init__(self, fake: FakeKubernetes, root: Path) -> None:
        self.fake = fake
        self.root = root
        self.executors: list[KubernetesExecutor] = []

    def settings(self, **values: Any) -> KubernetesSettings:
        env = {"GREENAI_K8S_NAMESPACE": self.fake.namespace, "GREENAI_K8S_IMAGE": IMAGE,
               "GREENAI_K8S_API_URL": self.fake.url}  # fmt: skip
        env.update({f"GREENAI_K8S_{k.upper()}": str(v) for k, v in values.items()})
        return KubernetesSettings.from_env(env)

    def executor(self, clock: Clock = SystemClock(), **values: Any) -> KubernetesExecutor:
        settings = self.settings(**values)
        executor = KubernetesExecutor(settings, api_client(settings, {}), clock)
        self.executors.append(executor)
        return executor

    def launch(self, job_id: str = "job-a", command: tuple[str, ...] = ("python", "train.py"),
               *, gpus: int = 0, attempt: int = 1, **options: Any) -> Launch:  # fmt: skip
        piece = options.get("piece", 0)
        state_dir = self.root / "runs" / job_id / (f"piece-{piece}" if piece else str(attempt))
        return Launch(job_id, attempt, command, gpus, (), state_dir, **options)

    def close(self) -> None:
        for executor in self.executors:
            executor.close()


@contextmanager
def kube_runs(root: Path) -> Iterator[KubeRuns]:
    with FakeKubernetes() as fake:
        runs = KubeRuns(fake, root)
        try:
            yield runs
        finally:
            runs.close()
