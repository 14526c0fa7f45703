"""The Kubernetes executor's own settings (``GREENAI_K8S_*``) and the API client they describe.

The official client (``pip install 'greenai[kubernetes]'``) is imported only when a client is
built, so greenai works without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from greenai.core.errors import ConfigError
from greenai.executors.env_settings import prefixed_settings

PREFIX = "GREENAI_K8S_"
IN_CLUSTER_MARK = "KUBERNETES_SERVICE_HOST"  # set in every pod


class KubernetesSettings(BaseSettings):
    """Where the executor's Jobs go and what their pods get."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    namespace: str = Field("default", description="namespace of the Jobs")
    image: str | None = Field(None, description="container image the jobs' commands run in")
    kubeconfig: Path | None = Field(None, description="kubeconfig file; unset: the default")
    context: str | None = Field(None, description="kubeconfig context; unset: its current one")
    in_cluster: bool | None = Field(
        None, description="use the pod's service account; unset: when running in a pod"
    )
    api_url: str | None = Field(
        None, description="API server URL without credentials (e.g. `kubectl proxy`'s)"
    )
    ttl_seconds: int = Field(3600, ge=0, description="ttlSecondsAfterFinished of each Job")
    service_account: str | None = Field(None, description="serviceAccountName of the pods")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    request_timeout_s: float = Field(10.0, gt=0, description="timeout of each API call")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KubernetesSettings:
        """The settings from ``env`` alone (``GREENAI_K8S_NAMESPACE`` -> ``namespace``...);
        ``ConfigError`` naming what is wrong."""
        return prefixed_settings(cls, PREFIX, env, "kubernetes executor")

    def required_image(self) -> str:
        if not self.image:
            raise ConfigError(f"kubernetes executor: set {PREFIX}IMAGE, the jobs' image")
        return self.image


def api_client(settings: KubernetesSettings, env: Mapping[str, str]) -> Any:
    """A ``kubernetes.client.ApiClient`` for the cluster the settings name: ``api_url``, else
    the pod's service account (in a cluster), else the kubeconfig."""
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise ConfigError(
            "kubernetes executor: the kubernetes client is not installed "
            "(pip install 'greenai[kubernetes]')"
        ) from exc
    configuration = client.Configuration()
    in_cluster = settings.in_cluster
    if in_cluster is None:
        in_cluster = IN_CLUSTER_MARK in env
    try:
        if settings.api_url:
            configuration.host = settings.api_url.rstrip("/")
        elif in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=str(settings.kubeconfig) if settings.kubeconfig else None,
                context=settings.context,
                client_configuration=configuration,
            )
    except (config.ConfigException, OSError) as exc:
        raise ConfigError(f"kubernetes executor: no usable cluster configuration: {exc}") from exc
    return client.ApiClient(configuration)
