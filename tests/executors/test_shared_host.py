"""Two CPU-busy jobs side by side under their supervisors: each is charged its CPU-time share of
the host, not the whole machine (issue 9 #6, attribution)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from greenai.executors.base import Launch
from greenai.executors.supervisor import launch_record, read_exit, write_record
from greenai.meters.config import MeterConfig
from tests.executors.helpers import python

ROOT = Path(__file__).resolve().parents[2]
# The supervisor with CodeCarbon replaced at its boundary by a tracker that says the whole
# machine used 1 kWh of CPU and 1 kWh of RAM: the job's cpu_kwh is then its share.
SUPERVISE_WITH_FAKE_HOST = """
import sys
from pathlib import Path
import greenai.meters.composite as composite
from greenai.executors.supervisor import Supervisor
from tests.meters.fakes import FakeTracker
composite.offline_tracker_factory = lambda country: (lambda: FakeTracker(1.0, 1.0))
Supervisor(Path(sys.argv[1])).run()
"""
BUSY = python(
    "import time\nstart = time.process_time()\nwhile time.process_time() - start < 1.0:\n    pass\n"
)


def test_concurrent_jobs_each_get_a_share_and_together_at_most_the_host(tmp_path: Path) -> None:
    dirs = [tmp_path / name for name in ("a", "b")]
    for number, state_dir in enumerate(dirs):
        state_dir.mkdir()
        launch = Launch(f"job-{number}", 1, BUSY, 0, (), state_dir)
        record = launch_record(launch, MeterConfig(meters="codecarbon"), {"kind": "system"})
        write_record(state_dir / "launch.json", record)
    supervisors = [
        subprocess.Popen(
            [sys.executable, "-c", SUPERVISE_WITH_FAKE_HOST, str(state_dir)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for state_dir in dirs
    ]
    for supervisor in supervisors:
        _, err = supervisor.communicate(timeout=60)
        assert supervisor.returncode == 0, err
    readings = []
    for state_dir in dirs:
        exited = read_exit(state_dir)
        assert exited is not None and exited.exit_code == 0
        assert exited.reading is not None
        readings.append(exited.reading)
    shares = [reading.cpu_kwh for reading in readings]
    for reading, share in zip(readings, shares, strict=True):
        assert 0 < share < 1
        assert reading.ram_kwh == share  # RAM in the same share
        assert any("split by CPU-time share" in note for note in reading.notes)
    # each job's CPU time is inside the machine's busy time of its own (nearly shared)
    # window; the slack is the tick granularity of /proc/stat
    assert sum(shares) <= 1.05
