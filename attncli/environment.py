"""The environment a report was made in: package versions, platform, CPU, threads, GPU, seed.

Importing this module imports nothing heavy. Versions come from the installed distributions'
metadata (importlib.metadata), never from importing the packages, so a report of an environment
without onnxscript or fvcore still works (the version is None). torch is imported only inside
``describe`` and only to read its thread count and CUDA device: ``describe`` is called when a report
is made, after the model has run, so torch is already loaded by then.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

from attncli.version import __version__

# The distributions a report names, in the order ``one_line`` lists the first four.
PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "fvcore", "numpy")


def package_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    """The CPU's marketing name: /proc/cpuinfo's "model name" on Linux, else platform.processor()."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def nvidia_driver_version() -> str | None:
    """The NVIDIA kernel driver's version from /proc/driver/nvidia/version (Linux); else None.

    torch reports the CUDA runtime it was built with, not the installed driver, so the driver is
    read from the kernel module's own banner ("NVRM version: ... Kernel Module  550.54.15  ...").
    """
    try:
        text = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("NVRM version:"):
            for word in line.split():
                if word[:1].isdigit() and "." in word:
                    return word
    return None


def _torch_facts() -> dict:
    """Thread count and GPU facts from torch, or Nones when torch is not installed."""
    facts: dict = {"torch_threads": None, "gpu": None, "cuda": None, "driver": None}
    if package_version("torch") is None:
        return facts
    import torch

    facts["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(torch.cuda.current_device())
        facts["cuda"] = torch.version.cuda
        facts["driver"] = nvidia_driver_version()
    return facts


def describe(seed: int | None = None, device: str | None = None) -> dict:
    """The environment as a JSON-ready dict (the ``environment`` object of every report).

    Keys: attncli, torch, onnx, onnxruntime, onnxscript, fvcore, numpy, python (versions; a missing
    package is None), platform {system, release, machine}, cpu, cpu_count (logical CPUs),
    torch_threads (intra-op threads), gpu, cuda, driver (None without a CUDA device), device (as
    given, None when not given) and seed (None when not given).
    """
    env: dict = {"attncli": __version__}
    for name in PACKAGES:
        env[name] = package_version(name)
    env["python"] = platform.python_version()
    env["platform"] = {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
    }
    env["cpu"] = cpu_model()
    env["cpu_count"] = os.cpu_count()
    env.update(_torch_facts())
    env["device"] = device
    env["seed"] = seed
    return env


def _short_python(version: str) -> str:
    return ".".join(version.split(".")[:2])


def one_line(env: dict) -> str:
    """The environment in one line for a footer, e.g.
    "attncli 0.1.0 · torch 2.13.0 · onnx 1.23.2 · onnxruntime 1.31.1 · Python 3.11 · Linux x86_64 ·
    AMD EPYC · 2 threads · seed 0". Missing packages and unknown facts are left out."""
    parts = [f"attncli {env.get('attncli')}"]
    for name in ("torch", "onnx", "onnxruntime"):
        if env.get(name):
            parts.append(f"{name} {env[name]}")
    if env.get("python"):
        parts.append(f"Python {_short_python(env['python'])}")
    plat = env.get("platform") or {}
    system = " ".join(p for p in (plat.get("system"), plat.get("machine")) if p)
    if system:
        parts.append(system)
    if env.get("gpu"):
        gpu = env["gpu"]
        if env.get("cuda"):
            gpu += f" (CUDA {env['cuda']}"
            gpu += f", driver {env['driver']})" if env.get("driver") else ")"
        parts.append(gpu)
    if env.get("cpu"):
        parts.append(env["cpu"])
    if env.get("torch_threads") is not None:
        threads = env["torch_threads"]
        parts.append(f"{threads} thread" + ("" if threads == 1 else "s"))
    if env.get("device"):
        parts.append(f"device {env['device']}")
    if env.get("seed") is not None:
        parts.append(f"seed {env['seed']}")
    return " · ".join(parts)

