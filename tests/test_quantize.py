"""int8 quantization (`export --quantize`, `check --quantize`): the file, its opset and metadata,
and figures recomputed here from onnxruntime's and PyTorch's outputs with numpy."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from attncli import api, gate
from attncli.config import load_config
from attncli.errors import UsageError
from attncli.modelspec import ModelRequest

SHAPE = "1,3,64,64"
EVAL_FIRST_SEED = 20_000  # the model's seed (0) + the evaluation offset the report states


def one_line(text: str) -> bool:
    return text.strip() != "" and text.strip().count("\n") == 0 and "Traceback" not in text


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def file_opset(path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def metadata(path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def recomputed_figures(path, model: str, shape: tuple, first_seed: int, samples: int) -> dict:
    """Cosine (smallest), top-1 agreement and error over the range, from the file run here and the
    model built and run here on the same seeded draws (torch.randn from each seed)."""
    built = api.build(model, input_shape=",".join(map(str, shape)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    cosines, agree, rows, max_rel = [], 0, 0, 0.0
    for seed in range(first_seed, first_seed + samples):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        with torch.inference_mode():
            expected = built.module(x).numpy().astype(np.float64)
        actual = session.run(None, {"input": x.numpy()})[0].astype(np.float64)
        a, b = actual.ravel(), expected.ravel()
        cosines.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
        agree += int((actual.argmax(1) == expected.argmax(1)).sum())
        rows += expected.shape[0]
        max_rel = max(max_rel, float(np.abs(a - b).max() / (b.max() - b.min())))
    return {"cosine_min": min(cosines), "top1": agree / rows, "max_rel": max_rel}


def test_dynamic_int8_of_eca_resnet18_agrees_with_torch_by_cosine_and_top1(cli, tmp_path):
    path = tmp_path / "eca18.onnx"
    result = cli("export", "eca_resnet18", "-s", SHAPE, "-o", path, "--quantize", "dynamic", "--eval-samples", "8", "-f", "json")
    assert result.exit_code == 0, result.stderr
    int8 = tmp_path / "eca18_int8.onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eca18.onnx", "eca18_int8.onnx"]
    assert file_opset(int8) == 17
    recorded = metadata(int8)
    assert recorded["attncli.quantization"] == "dynamic" and recorded["attncli.model"] == metadata(path)["attncli.model"]
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "ConvInteger" in ops and "Conv" not in ops  # every Conv quantized, and the CPU provider runs it

    data = json.loads(result.stdout)
    q = data["quantization"]
    assert q["passed"] and data["passed"] and q["mode"] == "dynamic" and q["samples"] == 8 and q["calibration"] is None
    mine = recomputed_figures(int8, "eca_resnet18", (1, 3, 64, 64), q["first_seed"], 8)
    assert q["first_seed"] == EVAL_FIRST_SEED
    assert mine["cosine_min"] > 0.99
    assert q["cosine_min"] == pytest.approx(mine["cosine_min"], abs=1e-6)
    assert q["top1_agreement"] == pytest.approx(mine["top1"]) and mine["top1"] >= 0.8
    assert q["max_error_rel_range"] == pytest.approx(mine["max_rel"], rel=1e-4)
    assert q["thresholds"] == {"min_cosine": 0.99, "min_top1": 0.8}
    assert q["file_bytes"] < q["float_bytes"] / 3  # int8 weights: about a quarter of float32's


def test_static_int8_keeps_the_asked_opset_and_passes(cli, tmp_path):
    path = tmp_path / "small.onnx"
    result = cli(
        "export", "eca_resnet18", "-s", "1,3,32,32", "--opset", "13", "-o", path, "--quantize", "static",
        "--calibration-samples", "4", "--eval-samples", "8", "-f", "json",
    )
    assert result.exit_code == 0, result.stderr
    int8 = tmp_path / "small_int8.onnx"
    assert file_opset(int8) == 13
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # the QDQ format
    recorded = metadata(int8)
    assert recorded["attncli.quantization"] == "static" and recorded["attncli.quantization.calibration"] == "seeded:4"
    q = json.loads(result.stdout)["quantization"]
    assert q["passed"] and q["calibration"] == {"source": "seeded", "folder": None, "samples": 4, "first_seed": 10_000}
    mine = recomputed_figures(int8, "eca_resnet18", (1, 3, 32, 32), q["first_seed"], 8)
    assert q["cosine_min"] == pytest.approx(mine["cosine_min"], abs=1e-6) and mine["cosine_min"] > 0.99


def test_static_int8_calibrated_on_zeros_fails_with_exit_1_and_keeps_the_file(cli, tmp_path):
    folder = tmp_path / "calibration"
    folder.mkdir()
    for i in range(2):
        np.save(folder / f"x{i}.npy", np.zeros((3, 32, 32), dtype=np.float32))  # one sample each, no batch axis
    path = tmp_path / "m.onnx"
    result = cli(
        "export", "eca_resnet18", "-s", "1,3,32,32", "-o", path, "--quantize", "static", "--calibration-data", folder,
        "--eval-samples", "4",
    )
    assert result.exit_code == 1, result.stderr
    error = last_line(result.stderr)  # after the progress lines
    assert error.startswith("error:") and "falls short" in error and "kept for inspection" in error
    assert "cosine min" in error and (tmp_path / "m_int8.onnx").is_file()
    assert metadata(tmp_path / "m_int8.onnx")["attncli.quantization.calibration"] == "folder:2"


def test_impossible_thresholds_fail_the_export(cli, tmp_path):
    result = cli(
        "export", "eca_resnet18", "-s", "1,3,32,32", "-o", tmp_path / "m.onnx", "--quantize", "dynamic", "--eval-samples", "2",
        "--min-top1", "1", "--min-cosine", "1",
    )
    assert result.exit_code == 1 and last_line(result.stderr).startswith("error:") and "< 1" in last_line(result.stderr)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--quantize", "static", "--calibration-data", "{tmp}/missing"], "no such folder"),
        (["--quantize", "static", "--calibration-data", "{tmp}/empty"], "holds no .npy files"),
        (["--quantize", "static", "--calibration-data", "{tmp}/wrong"], "has shape 1,4,32,32"),
        (["--quantize", "static", "--calibration-data", "{tmp}/ints"], "int64 values"),
        (["--quantize", "static", "--opset", "11"], "needs opset 13 or newer"),
        (["--quantize", "dynamic", "--calibration-samples", "4"], "static only"),
        (["--quantize", "static", "--calibration-samples", "0"], "1 or more"),
        (["--quantize", "dynamic", "--min-cosine", "2"], "between -1 and 1"),
        (["--quantize", "dynamic", "--min-top1", "-0.5"], "between 0 and 1"),
        (["--quantize", "int4"], "int4"),
        (["--quantize", "dynamic", "--dtype", "float16"], "starts from a float32 file"),
    ],
)
def test_bad_quantization_options_are_one_line_usage_errors_and_write_nothing(cli, tmp_path, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "wrong").mkdir()
    np.save(tmp_path / "wrong" / "a.npy", np.zeros((1, 4, 32, 32), dtype=np.float32))
    (tmp_path / "ints").mkdir()
    np.save(tmp_path / "ints" / "a.npy", np.zeros((1, 3, 32, 32), dtype=np.int64))
    out = tmp_path / "out"
    out.mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    result = cli("export", "eca_resnet18", "-s", "1,3,32,32", "-o", out / "m.onnx", *argv)
    assert result.exit_code == 2, result.stderr
    assert one_line(result.stderr) and message in result.stderr
    assert list(out.iterdir()) == []


def test_an_existing_int8_file_needs_force(cli, tmp_path):
    (tmp_path / "m_int8.onnx").write_bytes(b"keep me")
    result = cli("export", "eca", "-o", tmp_path / "m.onnx", "--quantize", "dynamic")
    assert result.exit_code == 2 and "--force" in result.stderr and one_line(result.stderr)
    assert (tmp_path / "m_int8.onnx").read_bytes() == b"keep me" and not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_default_samples_at_96_pass_with_a_margin(tmp_path, mode):
    result = api.export("eca_resnet18", tmp_path / "m.onnx", input_shape="1,3,96,96", quantize=mode)
    q = result.quantization
    assert q.passed and q.samples == 32 and q.cosine_min > 0.995 and q.top1_agreement >= 0.85, q.message
    mine = recomputed_figures(q.file, "eca_resnet18", (1, 3, 96, 96), q.first_seed, 32)
    assert q.cosine_min == pytest.approx(mine["cosine_min"], abs=1e-6) and q.top1_agreement == pytest.approx(mine["top1"])


# ----------------------------------------------------------------------------- the gate


def test_a_gate_case_quantizes_and_reports_its_figures(tmp_path):
    request = ModelRequest.make("eca_resnet18", input_shape="1,3,32,32")
    case = gate.Case("eca_resnet18", 17, "all", request=request, quantize="dynamic")
    (result,) = gate.run_model_cases([case], tmp_path)
    assert result.status == "passed", result.message
    q = result.quantization
    assert q["mode"] == "dynamic" and q["cosine_min"] > 0.99 and q["top1_agreement"] >= 0.8
    assert "int8 dynamic: cosine" in result.message and "quantize" in result.stages
    assert list(tmp_path.iterdir()) == []  # the float and int8 files are removed
    report = gate.CheckReport([result], [17], None, 1.0, 1)
    assert json.loads(gate.report_text(report, "json"))["cases"][0]["quantization"]["cosine_min"] == q["cosine_min"]
    assert "int8 dynamic: cosine" in gate.junit_xml(report) and "int8 dynamic: cosine" in gate.markdown(report)


def test_gate_refuses_static_at_an_opset_below_13():
    with pytest.raises(UsageError, match="opset 13"):
        gate.plan_cases(["eca"], [11, 17], options={"quantize": "static"})
    assert [c.quantize for c in gate.plan_cases(["eca"], [13], options={"quantize": "static"})] == ["static"]


def test_config_takes_a_quantize_key(tmp_path):
    path = tmp_path / "attncli.toml"
    path.write_text('quantize = "dynamic"\n[[models]]\ntarget = "eca"\n')
    assert load_config(path).models[0]["quantize"] == "dynamic"
    path.write_text('[[models]]\ntarget = "eca"\nquantize = 8\n')
    with pytest.raises(UsageError, match="quantize"):
        load_config(path)
