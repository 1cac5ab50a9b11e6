"""onnxruntime's execution providers: short names, what this installation offers, and what to install.

A provider is named as onnxruntime names it (``CUDAExecutionProvider``) or by its short name
(``cuda``). Which providers exist depends on the onnxruntime wheel, not on the machine: the
default ``onnxruntime`` wheel has the CPU one (and Azure's), ``onnxruntime-gpu`` adds CUDA and
TensorRT, ``onnxruntime-openvino`` OpenVINO, ``onnxruntime-directml`` DirectML, and the macOS
wheels CoreML. Only one of these packages can be installed at a time: they all provide the
``onnxruntime`` module.

onnxruntime is imported inside functions, so the CLI can read the names cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attncli.errors import UsageError

# short name -> onnxruntime's name; dml and directml are the same provider
SHORT_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
# onnxruntime's name -> the package whose wheel has it
PACKAGES = {
    "CPUExecutionProvider": "onnxruntime (every wheel)",
    "CUDAExecutionProvider": "onnxruntime-gpu",
    "TensorrtExecutionProvider": "onnxruntime-gpu (and TensorRT's own libraries)",
    "OpenVINOExecutionProvider": "onnxruntime-openvino",
    "DmlExecutionProvider": "onnxruntime-directml (Windows)",
    "CoreMLExecutionProvider": "onnxruntime (the macOS wheels)",
}


def short_name(provider: str) -> str:
    """``CUDAExecutionProvider`` -> ``cuda``; a provider without a short name -> its name in lower case
    without ``ExecutionProvider`` (``AzureExecutionProvider`` -> ``azure``)."""
    for short, full in SHORT_NAMES.items():
        if full == provider:
            return short
    return provider.removesuffix("ExecutionProvider").lower()


def available() -> list[str]:
    """The providers of the installed onnxruntime, in its order of preference."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_provider(name: str) -> str:
    """onnxruntime's name for ``name`` (a short name, any case, or onnxruntime's own), checked
    against the installed onnxruntime: one missing is a usage error naming the installed ones
    and the package that has it."""
    text = name.strip()
    full = SHORT_NAMES.get(text.lower())
    if full is None:
        full = next((p for p in [*SHORT_NAMES.values(), *available()] if p.lower() == text.lower()), None)
    if full is None:
        full = next((p for p in available() if short_name(p) == text.lower()), None)
    installed = available()
    shown = ", ".join(f"{short_name(p)} ({p})" for p in installed)
    if full is None:
        known = ", ".join(dict.fromkeys(SHORT_NAMES))
        raise UsageError(f"unknown execution provider {name!r}: give one of {known} or onnxruntime's name; installed: {shown}.",
                         option="provider")
    if full not in installed:
        package = PACKAGES.get(full, "another onnxruntime package")
        raise UsageError(f"onnxruntime here has no {full}: installed are {shown}; {full} comes with {package}"
                         " (see docs/providers.md).", option="provider")
    return full


@dataclass
class ProviderInfo:
    name: str  # onnxruntime's
    short: str
    installed: bool
    package: str  # the package whose wheel has it

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "short": self.short, "installed": self.installed, "package": self.package}


def list_providers() -> list[ProviderInfo]:
    """The installed providers (in onnxruntime's order), then the known ones that are not installed."""
    installed = available()
    rows = [ProviderInfo(p, short_name(p), True, PACKAGES.get(p, "onnxruntime")) for p in installed]
    for full in dict.fromkeys(SHORT_NAMES.values()):
        if full not in installed:
            rows.append(ProviderInfo(full, short_name(full), False, PACKAGES[full]))
    return rows
