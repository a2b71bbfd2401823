"""optbench harness: the command line, suites and workloads, data, trials and their callbacks, records,
metrics and reports (the layout is in the README)."""

__version__ = "0.1.0"


class BenchError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with status 2."""
