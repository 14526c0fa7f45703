"""Charging a job its CPU-time share of the host's CPU and RAM energy (issue 9 #6)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import EnergyReading
from greenai.meters.host_share import busy_ticks, charge_share, charge_whole_host, cpu_share
from greenai.meters.shared_host import HostShareMeter, machine_busy_seconds

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(seconds=10)
HOST = EnergyReading(
    T0, T1, cpu_kwh=0.02, ram_kwh=0.01, meter="rapl", samples=((T0, 0.0), (T1, 0.03))
)


def proc_stat(user: int, system: int, idle: int, *, steal: int = 0, guest: int = 0) -> str:
    """A /proc/stat as the kernel writes it: aggregate line first, then one line per CPU."""
    cpu = f"{user} 7 {system} {idle} 50 3 2 {steal} {guest} 0"
    return f"cpu  {cpu}\ncpu0 {cpu}\nintr 1 2 3\nctxt 99\nbtime 1700000000\n"


def test_busy_ticks_count_every_non_idle_column_once() -> None:
    # user 100 + nice 7 + system 40 + irq 3 + softirq 2 + steal 5; guest is inside user
    assert busy_ticks(proc_stat(100, 40, 9000, steal=5, guest=30)) == 157


def test_busy_ticks_need_the_aggregate_cpu_line() -> None:
    with pytest.raises(ValueError, match="no aggregate cpu line"):
        busy_ticks("cpu0 1 2 3 4\nintr 5\n")


def test_the_share_is_the_jobs_cpu_time_over_the_machines_busy_time() -> None:
    assert cpu_share(3.0, 12.0) == 0.25
    assert cpu_share(0.0, 12.0) == 0.0


def test_a_share_is_never_over_one_and_unknown_without_busy_time() -> None:
    assert cpu_share(12.01, 12.0) == 1.0  # rusage to the microsecond, /proc/stat to the tick
    assert cpu_share(1.0, 0.0) is None
    assert cpu_share(-1.0, 5.0) is None


def test_the_share_scales_cpu_ram_and_timeline_and_says_so() -> None:
    charged = charge_share(HOST, 0.37, 3.7, 10.0)
    assert charged.cpu_kwh == pytest.approx(0.0074)
    assert charged.ram_kwh == pytest.approx(0.0037)
    assert charged.samples[-1][1] == pytest.approx(0.0111)
    assert charged.notes[-1].startswith(
        "host CPU/RAM energy split by CPU-time share: this job 37% of the machine's busy CPU time"
    )


def test_the_whole_host_fallback_keeps_the_energy_and_says_why() -> None:
    charged = charge_whole_host(HOST, "no /proc/stat")
    assert (charged.cpu_kwh, charged.ram_kwh) == (HOST.cpu_kwh, HOST.ram_kwh)
    assert "whole machine charged" in charged.notes[-1]
    assert "no /proc/stat" in charged.notes[-1]


def test_machine_busy_seconds_reads_a_proc_stat_file(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(proc_stat(100, 40, 9000))
    assert machine_busy_seconds(stat) == 152 / os.sysconf("SC_CLK_TCK")


class FixedMeter:
    """A whole-machine meter that reads ``HOST`` whatever happened."""

    name = "rapl"

    def start(self) -> str:
        return "token"

    def stop(self, token: str) -> EnergyReading:
        assert token == "token"
        return HOST


def ticking(*values: float) -> Iterator[float]:
    return iter(values)


def test_the_meter_charges_the_share_of_its_run_window(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(proc_stat(1000, 0, 5000))
    job = ticking(1.0, 4.0)  # 3 CPU-s of the job
    meter = HostShareMeter(FixedMeter(), job_cpu=lambda: next(job), machine_busy=stat_reader(stat))
    token = meter.start()
    stat.write_text(proc_stat(1000 + 12 * os.sysconf("SC_CLK_TCK"), 0, 6000))  # 12 busy CPU-s
    reading = meter.stop(token)
    assert meter.name == "rapl"
    assert reading.cpu_kwh == pytest.approx(0.02 * 0.25)
    assert reading.ram_kwh == pytest.approx(0.01 * 0.25)
    assert "this job 25% of the machine's busy CPU time" in reading.notes[-1]


def test_the_meter_charges_the_whole_host_when_proc_stat_is_missing(tmp_path: Path) -> None:
    meter = HostShareMeter(
        FixedMeter(), job_cpu=lambda: 1.0, machine_busy=stat_reader(tmp_path / "absent")
    )
    reading = meter.stop(meter.start())
    assert reading.cpu_kwh == HOST.cpu_kwh
    assert "whole machine charged" in reading.notes[-1]
    assert "CPU times unreadable" in reading.notes[-1]


def test_the_meter_charges_the_whole_host_without_busy_time(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(proc_stat(1000, 0, 5000))
    meter = HostShareMeter(FixedMeter(), job_cpu=lambda: 1.0, machine_busy=stat_reader(stat))
    reading = meter.stop(meter.start())  # no tick passed in the window
    assert reading.ram_kwh == HOST.ram_kwh
    assert "whole machine charged" in reading.notes[-1]


def stat_reader(path: Path) -> Callable[[], float]:
    return lambda: machine_busy_seconds(path)
