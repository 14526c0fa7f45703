"""``python -m greenai`` is the ``greenai`` command."""

from greenai.cli import main

main()
