"""Shared fixtures: the CLI through Typer's test runner."""

import os
import textwrap
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

# No test reads or fills the user's count cache (attncli.count_cache), in this process or in the
# CLI subprocesses it starts; tests/test_count_cache.py turns it on in a temporary directory.
os.environ["ATTNCLI_NO_CACHE"] = "1"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli():
    from attncli.cli.main import app

    runner = CliRunner()

    def invoke(*args: str) -> CliResult:
        result = runner.invoke(app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke


TINY_NET = textwrap.dedent(
    """
    from torch import nn

    class Tiny(nn.Module):
        # two convolutions
        def __init__(self, width=4):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, 2, 1))
        def forward(self, x):
            return self.body(x)
    """
)


@pytest.fixture
def tiny_net_file(tmp_path):
    """A user's own model file: Tiny(width), a 3x3 conv (no padding), ReLU, a 1x1 conv to 2 maps."""
    path = tmp_path / "net.py"
    path.write_text(TINY_NET)
    return path


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
