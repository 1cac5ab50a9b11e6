"""attncli: build, profile, export and verify attention modules for CNNs.

Importing this package does not import torch; the API functions import what they need when called:
``attncli.build``, ``attncli.describe``, ``attncli.profile``, ``attncli.export``, ``attncli.verify``,
``attncli.check``, ``attncli.bench``.
"""

from attncli.version import __version__  # noqa: E402

from attncli.api import bench, build, check, describe, export, profile, verify  # noqa: E402  (torch-free until called)

__all__ = ["__version__", "bench", "build", "check", "describe", "export", "profile", "verify"]
