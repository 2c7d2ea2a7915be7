"""``bias-audit``: the command line. ``main`` is the console script's entry point."""

from audit.cli.commands import main

__all__ = ["main"]
