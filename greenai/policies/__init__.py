"""Policies: pure functions from jobs, forecast and a moment to decisions. No I/O, no clock."""
