"""deploy/k8s/README.md opens with the two manifests greenai is known by, the CronJob and the
daemon Deployment, in full and exactly as the files have them (so the page never drifts)."""

from __future__ import annotations

import re

from tests.deploy.manifests import K8S

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def test_readme_opens_with_the_cronjob_then_the_deployment_as_in_the_files() -> None:
    text = (K8S / "README.md").read_text(encoding="utf-8")
    blocks = FENCE.findall(text)
    assert [language for language, _ in blocks[:2]] == ["yaml", "yaml"]
    assert blocks[0][1] == (K8S / "overlays/cronjob/cronjob.yaml").read_text(encoding="utf-8")
    assert blocks[1][1] == (K8S / "overlays/daemon-sqlite/deployment.yaml").read_text(
        encoding="utf-8"
    )
    before = text[: text.index("```")]
    assert len(before.splitlines()) <= 10, "the CronJob is not the first thing the page shows"
