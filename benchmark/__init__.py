"""optbench harness: the command line (cli.py) over workload/, data/, trial/, sweep/, results/ and report/, and
the backend contract (testing.py); the layout and its rules are in the README and tests/test_layout.py."""

__version__ = "0.1.0"


class BenchError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with status 2."""


def make_console(stderr: bool = False, width: int | None = None):
    """A rich console that wraps lines only on a terminal: in a log or a pipe every line stays whole."""
    from rich.console import Console

    console = Console(stderr=stderr, width=width)
    console.soft_wrap = not console.is_terminal
    return console
