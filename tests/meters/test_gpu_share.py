"""A GPU other processes used during a job's run is split by a stated rule (issue 9 #6)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from greenai.core.domain import EnergyReading
from greenai.core.errors import MeterUnavailable
from greenai.meters.gpu_share import EVEN_SPLIT, UTILISATION, GpuShareTally, JobProcesses
from greenai.meters.nvml import NvmlCallError, NvmlMeter
from tests.fakes import FrozenClock
from tests.meters.fakes import ClockedNvml, Monotonic

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
SLOW = 3600.0  # only the start and stop reads happen


def mine(pid: int) -> bool:
    return pid < 100


def test_alone_on_the_gpu_the_job_is_charged_all_of_it() -> None:
    tally = GpuShareTally(0)
    tally.add_processes({10: True})
    tally.add_utilisation([(10, 80, 1), (10, 90, 2)], mine)
    assert tally.share() is None and tally.note() is None


def test_utilisation_samples_split_by_the_jobs_sm_time_each_sample_once() -> None:
    tally = GpuShareTally(1)
    tally.add_processes({10: True, 500: False})
    samples = [(10, 30, 1), (500, 60, 1), (11, 10, 2), (500, 100, 2)]
    tally.add_utilisation(samples, mine)
    tally.add_utilisation(samples, mine)  # read again: nothing new
    assert tally.share() == (pytest.approx(40 / 200), UTILISATION)
    assert tally.note() == (
        f"GPU 1 shared with other processes: this job charged 20% of its energy, by {UTILISATION}"
    )


def test_without_samples_an_even_split_between_process_groups_over_the_reads() -> None:
    tally = GpuShareTally(0)
    tally.add_processes({10: True, 500: False, 600: False})  # a third
    tally.add_processes({10: True})  # then alone
    assert tally.share() == (pytest.approx((1 / 3 + 1) / 2), EVEN_SPLIT)


def test_others_seen_but_never_the_job_charges_the_whole_gpu_and_says_why() -> None:
    tally = GpuShareTally(0)
    tally.add_processes({500: False})
    tally.add_utilisation([(500, 100, 1)], mine)
    assert tally.share() is None
    assert "none of them recognised as this job's" in (tally.note() or "")


@pytest.fixture
def other_process() -> Iterator[int]:
    """A real process in its own process group: someone else's job on the same GPU."""
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield child.pid
    child.kill()
    child.wait()


def run_on_gpu0(nvml: ClockedNvml, *, command_starts: bool = True) -> EnergyReading:
    """One 36 s run at 100 W (1 Wh) on GPU 0; this test process stands for the command."""
    job = JobProcesses()
    meter = NvmlMeter(FrozenClock(T0), gpus=[0], nvml=nvml, record_seconds=SLOW,
                      power_poll_seconds=SLOW, monotonic=nvml.monotonic, job=job)  # fmt: skip
    token = meter.start()
    if command_starts:
        job.pgid = os.getpgid(0)
    nvml.monotonic.now = 36.0
    return meter.stop(token)


def test_the_nvml_meter_charges_a_shared_gpu_by_utilisation(other_process: int) -> None:
    nvml = ClockedNvml([0], [100.0], Monotonic(0.0))
    later = time.time_ns() // 1000 + 1_000_000
    nvml.pids = {0: [os.getpid(), other_process]}
    nvml.utilization = {0: [(os.getpid(), 25, later), (other_process, 75, later)]}
    reading = run_on_gpu0(nvml)
    assert reading.gpu_kwh == pytest.approx(0.001 * 0.25)
    assert reading.samples[-1][1] == pytest.approx(reading.gpu_kwh)  # the timeline too
    assert any("this job charged 25%" in note for note in reading.notes)


def test_without_samples_the_meter_splits_evenly(other_process: int) -> None:
    nvml = ClockedNvml([0], [100.0], Monotonic(0.0))
    nvml.pids = {0: [os.getpid(), other_process]}
    reading = run_on_gpu0(nvml)
    assert reading.gpu_kwh == pytest.approx(0.0005)
    assert any(EVEN_SPLIT in note for note in reading.notes)


def test_without_utilisation_the_split_is_even_and_says_why(other_process: int) -> None:
    nvml = ClockedNvml([0], [100.0], Monotonic(0.0))
    nvml.pids = {0: [os.getpid(), other_process]}
    nvml.utilization_error = "Not Supported"
    reading = run_on_gpu0(nvml)
    assert reading.gpu_kwh == pytest.approx(0.0005)
    assert "nvml: no per-process utilisation (Not Supported)" in reading.notes


class NoProcessList(ClockedNvml):
    def process_ids(self, index: int) -> list[int]:
        raise NvmlCallError("Not Supported")


def test_a_driver_that_cannot_list_processes_leaves_the_whole_gpu_charged() -> None:
    reading = run_on_gpu0(NoProcessList([0], [100.0], Monotonic(0.0)))
    assert reading.gpu_kwh == pytest.approx(0.001)
    assert any("could not tell which processes" in note for note in reading.notes)


def test_before_the_command_starts_nothing_is_attributed(other_process: int) -> None:
    nvml = ClockedNvml([0], [100.0], Monotonic(0.0))
    nvml.pids = {0: [other_process]}
    reading = run_on_gpu0(nvml, command_starts=False)
    assert reading.gpu_kwh == pytest.approx(0.001) and reading.notes == ()


def test_a_mig_instance_is_charged_its_share_of_the_gpus_slices() -> None:
    nvml = ClockedNvml([0, 0], [100.0, 50.0], Monotonic(0.0))
    nvml.migs = {"MIG-aaaa-1111": (1, 1, 7), "MIG-aaaa-2222": (1, 2, 7)}
    nvml.pids = {1: [os.getpid(), 4242]}  # other instances' processes are not sharers here
    job = JobProcesses()
    meter = NvmlMeter(FrozenClock(T0), nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "MIG-aaaa-1111"},
                      record_seconds=SLOW, power_poll_seconds=SLOW, monotonic=nvml.monotonic,
                      job=job)  # fmt: skip
    token = meter.start()
    job.pgid = os.getpgid(0)
    nvml.monotonic.now = 72.0  # GPU 1: 50 W for 72 s = 1 Wh
    reading = meter.stop(token)
    assert meter.indices == [1] and reading.gpu_count == 1
    assert reading.gpu_kwh == pytest.approx(0.001 / 7)
    assert reading.notes == (
        "MIG-aaaa-1111: charged 0.143 of GPU 1's energy, its share of the GPU's compute slices "
        "(NVML has no per-instance energy counter); embodied is charged for the whole GPU",
    )


def test_two_instances_of_one_gpu_add_up_and_an_unknown_one_is_not_measured() -> None:
    nvml = ClockedNvml([0], [100.0], Monotonic(0.0))
    nvml.migs = {"MIG-aaaa-1111": (0, 1, 7), "MIG-aaaa-2222": (0, 2, 7)}
    both = NvmlMeter(FrozenClock(T0), nvml=nvml, gpus=["MIG-aaaa-1111", "MIG-aaaa-2222"])
    assert [(p.index, p.fraction) for p in both.parts] == [(0, pytest.approx(3 / 7))]
    with pytest.raises(MeterUnavailable, match="MIG instance NVML could not place"):
        NvmlMeter(FrozenClock(T0), nvml=nvml, gpus=["MIG-ffff"])
