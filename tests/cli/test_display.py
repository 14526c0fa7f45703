"""What a person sees while a job waits: a live line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console

from greenai.cli.display import DeferralDisplay, status_line
from greenai.core.domain import Action, Decision

NOW = datetime(2023, 3, 15, 18, 0, tzinfo=UTC)


def deferral(intensity: float = 212.0) -> Decision:
    return Decision(
        at=NOW,
        job_id="j",
        policy="threshold",
        action=Action.DEFER,
        reason="",
        intensity=intensity,
        threshold=150,
        forecast_min=98,
        planned_start=NOW + timedelta(hours=3),
        provider="uk",
        region="13",
        fallback="cache",
    )


def test_status_line_shows_intensity_threshold_best_time_and_time_left() -> None:
    line = status_line(deferral(), timedelta(minutes=54), NOW)
    assert line == (
        "deferring: 212 g/kWh > 150 | best 2023-03-15T21:00:00Z | forecast min 98 | "
        "54m00s left | uk:13 (fallback cache)"
    )


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with DeferralDisplay(Console(file=out, force_terminal=False, width=200)) as display:
        display.show(deferral(212), timedelta(hours=1), NOW)
        display.show(deferral(190), timedelta(minutes=55), NOW + timedelta(minutes=5))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("2023-03-15T18:00:00Z greenai deferring: 212 g/kWh > 150")
    assert "190 g/kWh" in lines[1] and "55m00s left" in lines[1]


def test_live_line_on_a_terminal_is_rewritten_and_cleared() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    display = DeferralDisplay(console)
    display.show(deferral(212), timedelta(hours=1), NOW)
    display.show(deferral(190), timedelta(minutes=55), NOW)
    display.close()
    text = out.getvalue()
    assert "190 g/kWh" in text
    assert "\x1b[" in text  # cursor control: the line is redrawn in place, not appended
