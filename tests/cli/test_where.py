"""`greenai where` as a user runs it: locations from GREENAI_LOCATIONS over real 2023 grids."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from tests.cli.conftest import REPO

DATA = REPO / "benchmarks" / "data"
Cmd = Callable[..., subprocess.CompletedProcess[str]]


def locations() -> str:
    def trace(file: str) -> str:
        return f"trace:{DATA / file}"

    return json.dumps(
        {
            "PJM": {
                "source": trace("US-MIDA-PJM_2023_hourly.electricitymaps.csv"),
                "gpus": 8,
                "residency": ["us"],
                "egress_usd_per_gb": 0.08,
                "bandwidth_gbps": {"ON": 100, "GB": 10},
            },
            "ON": {"source": trace("CA-ON_2023_hourly.electricitymaps.csv"), "gpus": 8},
            "GB": {"source": trace("GB_2023_hourly.electricitymaps.csv"), "residency": ["eu"]},
        }
    )


@pytest.fixture
def where(greenai_env: dict[str, str], greenai_cmd: Cmd) -> Cmd:
    greenai_env["GREENAI_LOCATIONS"] = locations()
    greenai_env["COLUMNS"] = "200"  # a wide terminal must not widen the output

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return greenai_cmd("where", "--at", "2023-05-01T00:00Z", *args)

    return run


def test_prints_the_ranking_in_80_columns(where: Cmd) -> None:
    done = where("--duration", "24h", "--data", "40TB@PJM", "--gpus", "8")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line.split() for line in lines if line[:2].strip().isdigit()]
    assert [row[1] for row in rows] == ["ON", "PJM"]
    assert rows[0][6:9] == ["53", "min", "3,200"]  # 40 TB at 100 Gbit/s; $0.08/GB
    assert "out: GB: capacity: 1 GPUs, the job needs 8" in done.stdout
    assert "why: move to ON:" in done.stdout


def test_json_has_the_api_shape(where: Cmd) -> None:
    done = where(
        "--duration", "24h", "--gpus", "8", "--data", "40TB@PJM", "--locations", "PJM,ON",
        "--json", "--usd-per-kg", "0.05", "--deadline", "2023-05-03T00:00Z",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["winner"] == "PJM" and body["home"] == "PJM"
    assert body["why"].startswith("stay at PJM: moving 40 TB to ON costs 53 min and $3,200")
    assert body["asked"]["data_gb"] == 40_000 and body["asked"]["power"].startswith("assumed")
    on = next(o for o in body["ranked"] if o["location"] == "ON")
    assert on["transfer_s"] == 3200 and on["egress_usd"] == 3200
    assert on["start"] >= "2023-05-01T00:53:20Z"
    assert any("perfect" in w for w in on["warnings"])  # a trace without forecasts says so


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--duration", "2h", "--data", "40XB@PJM"), "--data: '40XB' is not a size"),
        (("--duration", "2h", "--data", "4TB"), "must be SIZE@LOCATION"),
        (("--duration", "2h", "--locations", "PJM,MARS"), "locations: unknown location 'MARS'"),
        (("--duration", "2h", "--data", "1TB@MARS"), "data location: unknown location 'MARS'"),
        (("--duration", "soon"), "--duration: not a duration"),
        (("--duration", "2h", "--deadline", "2023-05-01T01:00Z"), "deadline: the job cannot"),
    ],
)
def test_bad_input_names_the_field(where: Cmd, args: tuple[str, ...], message: str) -> None:
    done = where(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
