"""attncli: build, profile, export and verify attention modules for CNNs.

Importing this package does not import torch; the API functions import what they need.
"""

__version__ = "0.1.0"

from attncli.api import build  # noqa: E402  (torch-free until called)

__all__ = ["__version__", "build"]
