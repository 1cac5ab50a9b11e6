"""attncli's pytest plugin (entry point ``pytest11``): the parity gate inside a team's own test suite.

Two ways in, both running the same gate as ``attncli check`` (each model in a fresh process):

- The ``attncli_check`` fixture, a function: ``attncli_check("models.py:Net", input_shape="1,3,64,64")``
  takes what :func:`attncli.check` takes, returns the report when every case passed, and otherwise
  fails the test with each failed case's figures (status, max error, message)::

      def test_net_exports(attncli_check):
          attncli_check("models.py:Net", input_shape="1,3,64,64", opsets=[13, 17])

- The project's configuration as tests: in a project whose ``pyproject.toml`` has a
  ``[tool.attncli]`` table (or which has an ``attncli.toml``), ``pytest`` collects one test per
  model and opset from that file (``pyproject.toml::net@opset17``), and runs the gate once for all
  of them. ``-p no:attncli`` turns the plugin off.

Importing this module imports neither torch nor attncli's library, so it costs nothing in a test
run that does not use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class GateFailed(Exception):
    """A case of the gate did not pass; its text is the case's one line."""


def _failure_text(cases: list[Any]) -> str:
    lines = []
    for case in cases:
        figure = f", max abs {case.max_abs:.2e}" if case.max_abs is not None else ""
        lines.append(f"{case.model}@opset{case.opset}: {case.status}{figure}: {case.message}")
    return "\n".join(lines)


@pytest.fixture
def attncli_check() -> Any:
    """``attncli_check(*targets, **options)``: run the gate; fail the test unless every case passed."""
    import attncli

    def run(*targets: str, **options: Any) -> Any:
        report = attncli.check(list(targets), **options)
        if not report.passed:
            failed = [c for c in report.cases if not c.passed]
            missing = f"\n{len(report.not_run)} case(s) did not run: {', '.join(report.not_run)}" if report.not_run else ""
            pytest.fail(f"attncli check: {len(failed)} of {report.planned} case(s) did not pass\n{_failure_text(failed)}{missing}", pytrace=False)
        return report

    return run


def pytest_collect_file(file_path: Path, parent: Any) -> Any:
    if file_path.name not in ("pyproject.toml", "attncli.toml"):
        return None
    from attncli.config import find_config

    if find_config(file_path.parent) != file_path:  # not this folder's configuration (or none)
        return None
    return ConfigFile.from_parent(parent, path=file_path)


class ConfigFile(pytest.File):
    """A project configuration: one item per model and opset."""

    def collect(self) -> Any:
        from attncli import gate
        from attncli.config import load_config

        project = load_config(self.path)
        for case in gate.plan_config(project):
            yield CaseItem.from_parent(self, name=case.id, case=case)

    def gate_report(self) -> Any:
        """The gate over the whole file, run once, when its first item runs."""
        if not hasattr(self, "_report"):
            import attncli

            self._report = attncli.check(config=self.path)
        return self._report


class CaseItem(pytest.Item):
    def __init__(self, *, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        report = self.parent.gate_report()
        result = next((c for c in report.cases if c.model == self.case.model and c.opset == self.case.opset), None)
        if result is None:
            raise GateFailed(f"{self.case.id}: did not run (the gate was interrupted)")
        if not result.passed:
            raise GateFailed(_failure_text([result]))

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, GateFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"attncli check {self.case.id}"
