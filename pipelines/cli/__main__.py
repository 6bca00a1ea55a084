"""``python -m pipelines.cli``: the ``roomtone`` command where the console script is not installed (Ray Jobs)."""

from pipelines.cli import main

main()
