"""optbench harness: the command line, suites and workloads, data, trials and their callbacks, records,
metrics and reports (the layout is in the README)."""

__version__ = "0.1.0"


class BenchError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with status 2."""


def make_console(stderr: bool = False, width: int | None = None):
    """A rich console that wraps lines only on a terminal: in a log or a pipe every line stays whole."""
    from rich.console import Console

    console = Console(stderr=stderr, width=width)
    console.soft_wrap = not console.is_terminal
    return console
