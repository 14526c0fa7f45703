"""The one-shot's child process: the environment it gets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from greenai.oneshot.child import start_child, wait_forwarding_signals


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "PCI_BUS_ID"), ({"CUDA_DEVICE_ORDER": "FASTEST_FIRST"}, "FASTEST_FIRST")],
)
def test_the_command_numbers_gpus_by_pci_bus_as_nvml_does_unless_its_env_says(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    """Issue 9 #6: CUDA's default order (fastest first) can differ from NVML's (PCI bus), so
    ``--gpus 0`` could run on one GPU while the meter reads another."""
    seen = tmp_path / "order"
    code = f"import os; open({str(seen)!r}, 'w').write(os.environ.get('CUDA_DEVICE_ORDER', '-'))"
    child = start_child([sys.executable, "-c", code], env=env)
    assert wait_forwarding_signals(child).exit_code == 0
    assert seen.read_text() == expected
