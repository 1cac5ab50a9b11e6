"""The ``attncli`` command: Typer and rich live here and nowhere else."""
