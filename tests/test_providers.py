"""onnxruntime's execution providers: listed as the installed onnxruntime has them, named by short or
full name on every command that runs onnxruntime, and a missing one refused in one line."""

import json

import pytest

KNOWN = {
    "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider", "dml": "DmlExecutionProvider", "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}


def installed():
    import onnxruntime as ort

    return ort.get_available_providers()


def a_missing_provider():
    missing = [(short, full) for short, full in KNOWN.items() if full not in installed()]
    if not missing:
        pytest.skip("every known provider is installed here")
    return missing[0]


@pytest.fixture(scope="module")
def se_file(tmp_path_factory):
    from attncli import api

    path = tmp_path_factory.mktemp("providers") / "se.onnx"
    api.export("se", path, input_shape="1,16,8,8", verify=False)
    return path


def test_the_listing_is_what_onnxruntime_has(cli):
    result = cli("providers", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["installed"] == installed()
    assert [p["name"] for p in data["providers"] if p["installed"]] == installed()
    shorts = {p["name"]: p["short"] for p in data["providers"]}
    assert shorts["CPUExecutionProvider"] == "cpu" and shorts["CUDAExecutionProvider"] == "cuda"
    packages = {p["name"]: p["package"] for p in data["providers"]}
    assert "onnxruntime-gpu" in packages["CUDAExecutionProvider"] and "onnxruntime-openvino" in packages["OpenVINOExecutionProvider"]
    table = cli("providers")
    assert table.exit_code == 0 and all(name in table.stdout for name in installed())


@pytest.mark.parametrize("name", ["cpu", "CPU", "CPUExecutionProvider", "cpuexecutionprovider"])
def test_short_and_full_names_resolve(name):
    from attncli.providers import resolve_provider

    assert resolve_provider(name) == "CPUExecutionProvider"


def test_verify_on_a_provider_by_its_full_name(cli, se_file):
    result = cli("verify", se_file, "--provider", "CPUExecutionProvider", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["provider"] == "CPUExecutionProvider"


@pytest.mark.parametrize("command", ["verify", "bench", "check", "export"])
def test_a_missing_provider_is_one_line_naming_the_installed_ones(cli, se_file, tmp_path, command):
    short, full = a_missing_provider()
    args = {
        "verify": ["verify", se_file],
        "bench": ["bench", "se", "-s", "1,16,8,8", "--iters", "1"],
        "check": ["check", "se", "--opset", "17"],
        "export": ["export", "se", "-s", "1,16,8,8", "-o", tmp_path / "se.onnx"],
    }[command]
    result = cli(*args, "--provider", short)
    assert result.exit_code == 2, result.stdout + result.stderr
    line = result.stderr.strip()
    assert line.count("\n") == 0 and full in line
    assert all(name in line for name in installed())
    assert not (tmp_path / "se.onnx").exists()


def test_an_unknown_provider_is_one_line_too(cli, se_file):
    result = cli("verify", se_file, "--provider", "warp-drive")
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0 and "warp-drive" in result.stderr


def test_device_and_provider_that_disagree_are_a_usage_error(cli, se_file):
    result = cli("verify", se_file, "--device", "cuda", "--provider", "cpu")
    assert result.exit_code == 2 and "disagree" in result.stderr and result.stderr.strip().count("\n") == 0
    agree = cli("verify", se_file, "--device", "cpu", "--provider", "cpu")
    assert agree.exit_code == 0, agree.stderr


@pytest.mark.gpu
def test_verify_and_bench_on_the_cuda_provider(cli, se_file):
    if "CUDAExecutionProvider" not in installed():
        pytest.skip("onnxruntime here has no CUDA provider (install onnxruntime-gpu)")
    verified = cli("verify", se_file, "--provider", "cuda", "-f", "json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["provider"] == "CUDAExecutionProvider"
    bench = cli("bench", "se", "-s", "1,16,8,8", "--iters", "3", "--device", "cuda", "--provider", "cuda", "-f", "json")
    assert bench.exit_code == 0 and json.loads(bench.stdout)["provider"] == "CUDAExecutionProvider"
