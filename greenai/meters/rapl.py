"""CPU (package) and DRAM energy from Linux RAPL counters under ``/sys/class/powercap``.

Each package domain ``intel-rapl:N`` (name ``package-N``) counts microjoules in
``energy_uj`` and wraps at ``max_energy_range_uj`` (every ~20-60 min at full load), so the
counters are read on a background thread often enough to see every wrap. ``dram`` sub-domains,
where present, are booked as RAM. Since the PLATYPUS fix (CVE-2020-8694) ``energy_uj`` is often
readable by root only: that is detected and reported as ``MeterUnavailable``. The sysfs root is
a parameter so tests point it at files in a temporary folder.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from greenai.core.domain import EnergyReading
from greenai.core.errors import MeterUnavailable
from greenai.core.time import Clock
from greenai.meters.base import joules_to_kwh
from greenai.meters.sampling import CumulativeSampler

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/sys/class/powercap")
_PACKAGE_DIR = re.compile(r"^intel-rapl:\d+$")


@dataclass
class _Domain:
    """One RAPL counter and the energy it has counted since the run started."""

    path: Path
    kind: str  # "cpu" or "ram"
    max_range_uj: int
    last_uj: int = 0
    joules: float = 0.0
    wraps: int = 0

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())

    def advance(self) -> None:
        value = self.read_uj()
        if value >= self.last_uj:
            self.joules += (value - self.last_uj) / 1e6
        else:  # wrapped past max_energy_range_uj
            self.joules += (self.max_range_uj - self.last_uj + value) / 1e6
            self.wraps += 1
        self.last_uj = value


def find_domains(root: Path) -> list[_Domain]:
    """Package domains (as CPU) and their ``dram`` sub-domains (as RAM); psys is skipped
    because it already contains the packages."""
    domains: list[_Domain] = []
    for package in sorted(root.glob("intel-rapl:*")):
        if not _PACKAGE_DIR.match(package.name) or not _name(package).startswith("package"):
            continue
        domains.append(_domain(package, "cpu"))
        for sub in sorted(package.glob(f"{package.name}:*")):
            if _name(sub) == "dram":
                domains.append(_domain(sub, "ram"))
    return domains


def _name(domain_dir: Path) -> str:
    try:
        return (domain_dir / "name").read_text().strip()
    except OSError:
        return ""


def _domain(path: Path, kind: str) -> _Domain:
    max_range = int((path / "max_energy_range_uj").read_text().strip())
    return _Domain(path, kind, max_range)


class _RaplRun:
    def __init__(self, meter: RaplMeter) -> None:
        self.domains = find_domains(meter.root)
        for domain in self.domains:
            domain.last_uj = domain.read_uj()
        self.sampler = CumulativeSampler(
            self.read,
            meter.clock,
            name="rapl",
            poll_seconds=meter.poll_seconds,
            record_seconds=meter.poll_seconds,
            monotonic=meter.monotonic,
        )

    def read(self, full: bool) -> float:
        for domain in self.domains:
            domain.advance()
        return joules_to_kwh(sum(domain.joules for domain in self.domains))

    def counters(self) -> dict[str, int]:
        """Each domain's raw ``energy_uj`` as last read, by sysfs folder name
        (``intel-rapl:0``, ``intel-rapl:0:1``: names such as ``dram`` repeat per package)."""
        return {domain.path.name: domain.last_uj for domain in self.domains}

    def kwh(self, kind: str) -> float:
        return joules_to_kwh(sum(d.joules for d in self.domains if d.kind == kind))


class RaplMeter:
    """CPU package and DRAM energy from RAPL; ``MeterUnavailable`` where it cannot be read."""

    def __init__(
        self,
        clock: Clock,
        *,
        root: Path = DEFAULT_ROOT,
        poll_seconds: float = 15.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.root = root
        self.poll_seconds = poll_seconds
        self.monotonic = monotonic
        self.name = "rapl"
        self._probe()

    def _probe(self) -> None:
        try:
            domains = find_domains(self.root)
            for domain in domains:
                domain.read_uj()
        except PermissionError as exc:
            raise MeterUnavailable(
                f"rapl: {exc.filename} is readable by root only (common since CVE-2020-8694)"
            ) from exc
        except (OSError, ValueError) as exc:
            raise MeterUnavailable(f"rapl: cannot read counters under {self.root}: {exc}") from exc
        if not domains:
            raise MeterUnavailable(f"rapl: no package domain under {self.root}")

    def start(self) -> _RaplRun:
        try:
            run = _RaplRun(self)
        except (OSError, ValueError) as exc:
            raise MeterUnavailable(f"rapl: cannot read counters: {exc}") from exc
        run.sampler.start()
        return run

    def stop(self, token: _RaplRun) -> EnergyReading:
        samples = token.sampler.stop()
        notes = ["rapl: package energy counts the whole CPU socket, not only the job"]
        if not any(d.kind == "ram" for d in token.domains):
            notes.append("rapl: no dram domain; RAM not measured")
        wraps = sum(d.wraps for d in token.domains)
        if wraps:
            notes.append(f"rapl: {wraps} counter wrap(s) handled")
        if token.sampler.failed_reads:
            notes.append(f"rapl: {token.sampler.failed_reads} failed read(s) during the run")
        return EnergyReading(
            started_at=samples[0][0],
            finished_at=samples[-1][0],
            cpu_kwh=token.kwh("cpu"),
            ram_kwh=token.kwh("ram"),
            meter="rapl",
            notes=tuple(notes),
            samples=samples,
        )
