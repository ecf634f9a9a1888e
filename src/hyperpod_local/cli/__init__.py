"""The command line: `hyperpod-local serve` and the admin commands (commands.py), and their
terminal views (views.py)."""

from hyperpod_local.cli.commands import main

__all__ = ["main"]
