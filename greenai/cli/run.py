"""`greenai run` and `greenai intensity` (being written)."""
