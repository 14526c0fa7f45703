"""Pausing a local run: the supervisor sends the asked signal to the command's group, SIGKILL
after the grace when the command does not stop, and records the exit as paused; each piece
sees its number and whether it resumes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from greenai.executors.base import Exited
from tests.executors.helpers import LocalRuns, python, wait_end, wait_for

REPORT_AND_WAIT = (
    "import json, os, signal, sys, time\n"
    "out = sys.argv[1]\n"
    "marks = {k: os.environ.get(k) for k in ('GREENAI_PIECE', 'GREENAI_RESUME')}\n"
    "def stop(signum, frame):\n"
    "    open(out, 'w').write(json.dumps({**marks, 'signal': signum}))\n"
    "    sys.exit(7)\n"
    "signal.signal(signal.SIGUSR1, stop)\n"
    "open(out + '.ready', 'w').close()\n"
    "time.sleep(60)\n"
)


def test_a_paused_piece_gets_the_signal_asked_for_and_is_recorded_paused(
    local_runs: LocalRuns, tmp_path: Path
) -> None:
    out = tmp_path / "stopped.json"
    executor = local_runs.executor()
    launch = local_runs.launch((*python(REPORT_AND_WAIT), str(out)), piece=3)
    handle = local_runs.submit(executor, launch)
    wait_for(lambda: Path(f"{out}.ready").exists(), "the command to start")
    executor.pause(handle, signal.SIGUSR1, grace_s=10)
    ended = wait_end(executor, handle)
    assert isinstance(ended, Exited)
    assert (ended.paused, ended.exit_code, ended.limit) == (True, 7, None)
    assert "paused: SIGUSR1 sent to the command" in ended.notes
    seen = json.loads(out.read_text())
    assert seen == {"GREENAI_PIECE": "3", "GREENAI_RESUME": "1", "signal": signal.SIGUSR1}


def test_a_piece_that_ignores_the_pause_is_killed_after_the_grace(local_runs: LocalRuns) -> None:
    stubborn = python("import signal, time; signal.signal(15, signal.SIG_IGN); time.sleep(60)")
    executor = local_runs.executor()
    handle = local_runs.submit(executor, local_runs.launch(stubborn, piece=1))
    wait_for(lambda: (Path(handle.ref["state_dir"]) / "started.json").exists(), "a start")
    executor.pause(handle, signal.SIGTERM, grace_s=0.3)
    ended = wait_end(executor, handle)
    assert isinstance(ended, Exited) and ended.paused and ended.exit_code == 137
    assert "killed: still running 0.3s after SIGTERM" in ended.notes


def test_a_whole_run_has_no_piece_marks_and_a_finished_run_ignores_a_pause(
    local_runs: LocalRuns, tmp_path: Path
) -> None:
    out = tmp_path / "env.json"
    code = (
        "import json, os, sys\n"
        "names = ('GREENAI_PIECE', 'GREENAI_RESUME')\n"
        "open(sys.argv[1], 'w').write(json.dumps([n in os.environ for n in names]))\n"
    )
    executor = local_runs.executor()
    handle = local_runs.submit(executor, local_runs.launch((*python(code), str(out))))
    ended = wait_end(executor, handle)
    executor.pause(handle, signal.SIGTERM, grace_s=1)  # over already: nothing to do
    assert isinstance(ended, Exited) and not ended.paused and ended.exit_code == 0
    assert json.loads(out.read_text()) == [False, False]
    assert not (Path(handle.ref["state_dir"]) / "pause.json").exists()
