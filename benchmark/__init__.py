"""optbench harness: workloads, data, the one-trial runner, suites, metrics, results and reports."""

__version__ = "0.1.0"


class BenchError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with status 2."""
