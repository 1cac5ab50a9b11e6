"""attncli: build, profile, export and verify attention modules for CNNs.

Importing this package does not import torch; the API functions import what they need when called:
``attncli.build``, ``attncli.profile``, ``attncli.export``, ``attncli.verify``, ``attncli.check``;
``attncli.api.describe`` and ``attncli.api.bench`` too (not re-exported here: the submodules
``attncli.describe`` and ``attncli.bench`` would rebind those names when imported).
"""

from attncli.version import __version__  # noqa: E402

from attncli.api import build, check, export, profile, verify  # noqa: E402  (torch-free until called)

__all__ = ["__version__", "build", "check", "export", "profile", "verify"]
