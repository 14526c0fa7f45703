"""RAPL meter over a fake sysfs tree in a temporary folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from greenai.core.errors import MeterUnavailable
from greenai.meters.rapl import RaplMeter, find_domains
from tests.fakes import FrozenClock
from tests.meters.fakes import write_rapl_domain

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MAX = 262_143_328_850
KWH_UJ = 3.6e12  # microjoules in one kWh


def rapl_tree(root: Path) -> Path:
    write_rapl_domain(root / "intel-rapl:0", "package-0", 1_000_000, MAX)
    write_rapl_domain(root / "intel-rapl:0" / "intel-rapl:0:0", "core", 7, MAX)
    write_rapl_domain(root / "intel-rapl:0" / "intel-rapl:0:1", "dram", 500, MAX)
    write_rapl_domain(root / "intel-rapl:1", "package-1", 2_000_000, MAX)
    write_rapl_domain(root / "intel-rapl:2", "psys", 9, MAX)  # contains the packages: skipped
    return root


def set_energy(domain: Path, value: int) -> None:
    (domain / "energy_uj").write_text(f"{value}\n")


def test_finds_packages_as_cpu_and_dram_as_ram_skipping_psys_and_cores(tmp_path: Path) -> None:
    domains = find_domains(rapl_tree(tmp_path))
    found = {(d.path.name, d.kind) for d in domains}
    assert found == {("intel-rapl:0", "cpu"), ("intel-rapl:0:1", "ram"), ("intel-rapl:1", "cpu")}


def test_energy_is_the_counter_delta_of_every_domain(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path)
    meter = RaplMeter(FrozenClock(T0), root=root, poll_seconds=3600)
    token = meter.start()
    set_energy(root / "intel-rapl:0", 1_000_000 + 36_000_000)  # 36 J
    set_energy(root / "intel-rapl:1", 2_000_000 + 72_000_000)
    set_energy(root / "intel-rapl:0" / "intel-rapl:0:1", 500 + 18_000_000)
    reading = meter.stop(token)
    assert reading.cpu_kwh == pytest.approx(108_000_000 / KWH_UJ)
    assert reading.ram_kwh == pytest.approx(18_000_000 / KWH_UJ)
    assert reading.meter == "rapl"
    assert reading.samples[-1][1] == pytest.approx(reading.energy_kwh)


def test_counter_wrap_uses_max_energy_range(tmp_path: Path) -> None:
    write_rapl_domain(tmp_path / "intel-rapl:0", "package-0", 990_000, 1_000_000)
    meter = RaplMeter(FrozenClock(T0), root=tmp_path, poll_seconds=3600)
    token = meter.start()
    set_energy(tmp_path / "intel-rapl:0", 10_000)
    reading = meter.stop(token)
    assert reading.cpu_kwh == pytest.approx(20_000 / KWH_UJ)
    assert any("1 counter wrap" in note for note in reading.notes)
    assert any("no dram" in note for note in reading.notes)


def test_root_only_counters_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rapl_tree(tmp_path)
    real_read_text = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":  # what a non-root user meets since CVE-2020-8694
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(MeterUnavailable, match="root only"):
        RaplMeter(FrozenClock(T0), root=tmp_path)


def test_no_rapl_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(MeterUnavailable, match="no package domain"):
        RaplMeter(FrozenClock(T0), root=tmp_path)
    with pytest.raises(MeterUnavailable, match="no package domain"):
        RaplMeter(FrozenClock(T0), root=tmp_path / "missing")


def test_counters_are_each_domains_raw_energy_uj_by_folder(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path)
    meter = RaplMeter(FrozenClock(T0), root=root, poll_seconds=3600)
    token = meter.start()
    start = {"intel-rapl:0": 1_000_000, "intel-rapl:0:1": 500, "intel-rapl:1": 2_000_000}
    assert token.counters() == start
    set_energy(root / "intel-rapl:1", 2_000_000 + 72_000_000)
    meter.stop(token)
    assert token.counters() == {**start, "intel-rapl:1": 74_000_000}
