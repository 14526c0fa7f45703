"""A training-like job that keeps greenai's interruptible contract.

Submit it with ``interruptible: true`` and greenai's daemon may run it in pieces, in the
cleanest hours before its deadline:

- to pause it, the daemon sends SIGTERM (the ``pause_signal`` setting) and waits
  ``pause_grace_seconds`` before SIGKILL: the job saves its progress and exits (its exit code
  does not matter while it is being paused);
- each piece gets ``GREENAI_PIECE`` (1, 2, ...) in its environment, and a resumed piece also
  ``GREENAI_RESUME=1``: the job then carries on from its checkpoint instead of starting over.

Here one "step" of training is a sleep; the checkpoint is the number of steps done, written
atomically so a SIGKILL in the middle never leaves half a file. ``--log`` appends each finished
step's number, so a test can see every step done exactly once.

    python examples/interruptible_train.py --checkpoint /tmp/ckpt.json --steps 600
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path


def load_step(checkpoint: Path) -> int:
    """The steps a previous piece finished (0 when it left no checkpoint)."""
    try:
        return int(json.loads(checkpoint.read_text(encoding="utf-8"))["step"])
    except FileNotFoundError:
        return 0


def save_step(checkpoint: Path, step: int) -> None:
    """Write the checkpoint whole or not at all: a temporary file renamed over it."""
    partial = checkpoint.with_name(checkpoint.name + ".partial")
    with partial.open("w", encoding="utf-8") as file:
        json.dump({"step": step}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, checkpoint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="where progress is kept")
    parser.add_argument("--steps", type=int, default=100, help="steps of the whole job")
    parser.add_argument("--step-seconds", type=float, default=0.1, help="wall time of a step")
    parser.add_argument("--log", type=Path, help="append each finished step's number here")
    args = parser.parse_args(argv)

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True  # finish the step under way, then checkpoint and exit

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    resumed = os.environ.get("GREENAI_RESUME") == "1"
    step = load_step(args.checkpoint) if resumed else 0
    piece = os.environ.get("GREENAI_PIECE", "-")
    how = f"resumed at step {step}" if resumed else "started afresh"
    print(f"piece {piece}: {how} of {args.steps}", flush=True)
    while step < args.steps and not stopping:
        time.sleep(args.step_seconds)  # one step of training
        step += 1
        if args.log is not None:
            with args.log.open("a", encoding="utf-8") as log:
                log.write(f"{step - 1}\n")
    save_step(args.checkpoint, step)
    state = "done" if step >= args.steps else "paused: checkpoint saved"
    print(f"piece {piece}: {state} at step {step} of {args.steps}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
