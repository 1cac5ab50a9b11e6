"""The console script: the app with every command registered (each module registers its own)."""

from attncli.cli import cmd_bench, cmd_check, cmd_compare, cmd_export, cmd_info, cmd_inspect, cmd_list, cmd_profile, cmd_providers, cmd_report, cmd_verify  # noqa: F401
from attncli.cli.app import app

__all__ = ["app", "run"]


def run() -> None:
    app()
