"""attncli.environment: each fact checked against its own source (importlib.metadata, platform, os)."""

import importlib.metadata
import json
import os
import platform
import subprocess
import sys

import pytest

from attncli import environment
from attncli.version import __version__


def _installed(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_versions_come_from_the_installed_distributions():
    env = environment.describe()
    assert env["attncli"] == __version__
    for name in ("torch", "onnx", "onnxruntime", "onnxscript", "fvcore", "numpy"):
        assert env[name] == _installed(name), name
    assert env["python"] == platform.python_version()


def test_a_missing_package_is_null():
    assert environment.package_version("attncli-no-such-distribution") is None


def test_platform_cpu_and_threads():
    import torch

    env = environment.describe()
    assert env["platform"]["system"] == platform.system()
    assert env["platform"]["machine"] == platform.machine()
    assert env["cpu_count"] == os.cpu_count()
    assert env["torch_threads"] == torch.get_num_threads()
    assert isinstance(env["cpu"], str) and env["cpu"]


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="Linux only")
def test_cpu_model_is_the_cpuinfo_model_name():
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    if names:
        assert environment.describe()["cpu"] == names[0]


def test_gpu_facts_follow_cuda_availability():
    import torch

    env = environment.describe()
    if torch.cuda.is_available():
        assert env["gpu"] == torch.cuda.get_device_name(torch.cuda.current_device())
        assert env["cuda"] == torch.version.cuda
    else:
        assert env["gpu"] is None and env["cuda"] is None and env["driver"] is None


def test_seed_and_device_are_recorded_only_when_given():
    assert environment.describe()["seed"] is None
    assert environment.describe()["device"] is None
    env = environment.describe(seed=7, device="cpu")
    assert env["seed"] == 7 and env["device"] == "cpu"


def test_the_object_is_json_ready():
    env = environment.describe(seed=0, device="cpu")
    assert json.loads(json.dumps(env)) == env


def test_one_line_names_the_facts_in_order():
    env = {
        "attncli": "0.1.0", "torch": "2.13.0", "onnx": "1.23.2", "onnxruntime": "1.31.1",
        "onnxscript": None, "fvcore": None, "numpy": "2.4.6", "python": "3.11.7",
        "platform": {"system": "Linux", "release": "6.1", "machine": "x86_64"},
        "cpu": "AMD EPYC", "cpu_count": 2, "torch_threads": 2,
        "gpu": None, "cuda": None, "driver": None, "device": None, "seed": 0,
    }
    assert environment.one_line(env) == (
        "attncli 0.1.0 · torch 2.13.0 · onnx 1.23.2 · onnxruntime 1.31.1 · Python 3.11 · "
        "Linux x86_64 · AMD EPYC · 2 threads · seed 0"
    )
    env.update(onnx=None, gpu="NVIDIA H200", cuda="12.8", driver="550.54.15", seed=None,
               torch_threads=1, device="cuda")
    assert environment.one_line(env) == (
        "attncli 0.1.0 · torch 2.13.0 · onnxruntime 1.31.1 · Python 3.11 · Linux x86_64 · "
        "NVIDIA H200 (CUDA 12.8, driver 550.54.15) · AMD EPYC · 1 thread · device cuda"
    )


def test_importing_the_module_does_not_import_torch():
    code = "import sys, attncli.environment; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
