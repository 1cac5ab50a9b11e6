"""Half-precision export and verification: files in float16 (and bfloat16 made elsewhere) judged
against PyTorch in float32, with the half tolerances, and their error in the format's own terms."""

import json

import numpy as np
import pytest

# The half defaults as the docs state them (atol 1e-3, rtol 1e-2), and float32's.
HALF = (1e-3, 1e-2)
FLOAT32 = (1e-5, 1e-4)


def element_types(path):
    """(input types, output types, initializer types) of the file, read with onnx here."""
    import onnx

    model = onnx.load(str(path))
    weights = {t.name for t in model.graph.initializer}
    inputs = [v.type.tensor_type.elem_type for v in model.graph.input if v.name not in weights]
    outputs = [v.type.tensor_type.elem_type for v in model.graph.output]
    return inputs, outputs, {t.data_type for t in model.graph.initializer}, model


@pytest.mark.parametrize("model, shape", [("se", "1,64,16,16"), ("eca_resnet18", "1,3,64,64")])
def test_a_float16_export_verifies_at_the_half_tolerances_and_fails_at_float32_ones(tmp_path, model, shape):
    import onnxruntime as ort
    import torch
    from onnx import TensorProto

    from attncli import api

    path = tmp_path / f"{model}_fp16.onnx"
    result = api.export(model, path, opset=17, input_shape=shape, dtype="float16", device="cpu")
    assert result.passed, result.parity.message
    assert (result.parity.atol, result.parity.rtol) == HALF and result.parity.precision == "float16"
    assert result.dtype == "float16" and not result.keep_io_types

    inputs, outputs, weights, onnx_model = element_types(path)
    assert inputs == [TensorProto.FLOAT16] and outputs == [TensorProto.FLOAT16]
    assert TensorProto.FLOAT16 in weights and TensorProto.FLOAT not in weights
    assert [o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx")] == [17]  # the opset asked, exactly
    assert {p.key: p.value for p in onnx_model.metadata_props}["attncli.dtype"] == "float16"

    # the error measured here, apart from attncli: onnxruntime on the half input against PyTorch in float32
    built = api.build(model, input_shape=shape)
    x = torch.randn(tuple(int(d) for d in shape.split(",")), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = built.module(x).numpy().astype(np.float64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {session.get_inputs()[0].name: x.numpy().astype(np.float16)})[0].astype(np.float64)
    diff = np.abs(actual - expected)
    half_fail = (diff > HALF[0]) & (diff > HALF[1] * np.abs(expected))
    float32_fail = (diff > FLOAT32[0]) & (diff > FLOAT32[1] * np.abs(expected))
    assert not half_fail.any() and float32_fail.any()
    first = result.parity.cases[0]
    assert first.max_abs == pytest.approx(diff.max(), rel=1e-6)  # the report's figure is the one measured here
    assert first.outputs[0].max_ulp > 0 and np.isfinite(first.outputs[0].max_ulp)

    strict = api.verify(path, atol=FLOAT32[0], rtol=FLOAT32[1])
    assert not strict and "float16" in strict.message and "ULPs" in strict.message
    again = api.verify(path)  # the defaults follow the file's precision
    assert again and (again.atol, again.rtol) == HALF


def test_keep_io_types_keeps_the_edges_float32(tmp_path):
    from onnx import TensorProto

    from attncli import api

    path = tmp_path / "se_fp16_io32.onnx"
    result = api.export("se", path, input_shape="1,64,16,16", dtype="float16", keep_io_types=True, device="cpu")
    assert result.passed, result.parity.message
    inputs, outputs, weights, model = element_types(path)
    assert inputs == [TensorProto.FLOAT] and outputs == [TensorProto.FLOAT]
    assert TensorProto.FLOAT16 in weights  # the inside is half
    assert result.parity.precision == "float16" and (result.parity.atol, result.parity.rtol) == HALF


def test_the_export_command_takes_dtype_and_refuses_keep_io_types_alone(cli, tmp_path):
    path = tmp_path / "se16.onnx"
    result = cli("export", "se", "-s", "1,64,16,16", "--dtype", "float16", "-o", path, "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dtype"] == "float16" and data["keep_io_types"] is False
    assert data["parity"]["precision"] == "float16" and data["parity"]["atol"] == HALF[0]
    output = data["parity"]["cases"][0]["outputs"][0]
    assert output["max_ulp"] is not None and output["max_rel"] is not None

    alone = cli("export", "se", "-s", "1,64,16,16", "--keep-io-types", "-o", tmp_path / "x.onnx")
    assert alone.exit_code == 2 and "--dtype float16" in alone.stderr and alone.stderr.strip().count("\n") == 0


def test_ulp_of_the_half_formats():
    """By hand from IEEE 754: float16 keeps 10 bits after the leading one, its normal numbers start
    at 2^-14; bfloat16 keeps 7, from 2^-126."""
    from attncli.parity import ulp

    assert ulp([1.0, 1.5, 1.999], "float16").tolist() == [2**-10] * 3
    assert ulp([0.75, -0.75], "float16").tolist() == [2**-11] * 2
    assert ulp([65504.0], "float16").tolist() == [32.0]
    assert ulp([0.0, 2**-20], "float16").tolist() == [2**-24] * 2  # subnormals: a fixed spacing
    assert ulp([1.0, 3.0], "bfloat16").tolist() == [2**-7, 2**-6]


def test_verify_a_float16_file_made_by_onnx_s_converter(cli, tmp_path):
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from attncli import api

    float32 = tmp_path / "se.onnx"
    api.export("se", float32, input_shape="1,64,16,16", verify=False)
    half = tmp_path / "se_half.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(float32))), str(half))

    table = cli("verify", half)  # the model from the spec the float32 export recorded
    assert table.exit_code == 0, table.stderr
    assert "float16" in table.stdout and "element type" not in table.stdout + table.stderr
    data = json.loads(cli("verify", half, "-f", "json").stdout)
    assert data["precision"] == "float16" and (data["atol"], data["rtol"]) == HALF and data["passed"]
    strict = cli("verify", half, "--atol", "1e-5", "--rtol", "1e-4")
    assert strict.exit_code == 1 and "float16" in strict.stdout


def test_an_input_that_is_not_floating_point_is_named_in_words(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.INT64, [1, 64, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [1, 64, 16, 16])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path = tmp_path / "ints.onnx"
    onnx.save(model, str(path))
    result = cli("verify", "se", path, "-s", "1,64,16,16")
    assert result.exit_code == 2 and "int64" in result.stderr and "element type 7" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_a_bfloat16_file_runs_or_says_in_one_line_why_not(cli, tmp_path):
    """onnxruntime's CPU kernels have no bfloat16 Relu (1.2x); where they do, the file verifies."""
    import onnx
    from onnx import TensorProto, helper

    net = tmp_path / "relu_net.py"
    net.write_text("from torch import nn\n\n\nclass Net(nn.ReLU):\n    pass\n")
    x = helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1, 8])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path = tmp_path / "relu_bf16.onnx"
    onnx.save(model, str(path))
    result = cli("verify", f"{net}:Net", path, "-s", "1,8", "-f", "json")
    if result.exit_code == 0:
        assert json.loads(result.stdout)["precision"] == "bfloat16"
    else:
        assert result.exit_code == 2 and "bfloat16" in result.stderr and result.stderr.strip().count("\n") == 0


@pytest.mark.gpu
def test_a_float16_file_verifies_on_the_cuda_provider(cli, tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime here has no CUDA provider (install onnxruntime-gpu)")
    path = tmp_path / "se16.onnx"
    result = cli("export", "se", "-s", "1,64,16,16", "--dtype", "float16", "-o", path, "--provider", "cuda", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["parity"]["provider"] == "CUDAExecutionProvider"


def test_a_bfloat16_file_is_fed_and_read_through_casts(cli, tmp_path):
    """numpy has no bfloat16: the input goes in as float32 rounded to bfloat16 by a Cast, the output
    comes back exact. An Identity file then differs from PyTorch by the input's rounding only: at
    most half a bfloat16 ULP (2^-8 of the value's binade)."""
    import onnx
    from onnx import TensorProto, helper

    net = tmp_path / "same_net.py"
    net.write_text("from torch import nn\n\n\nclass Net(nn.Identity):\n    pass\n")
    x = helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1, 8])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path = tmp_path / "same_bf16.onnx"
    onnx.save(model, str(path))
    result = cli("verify", f"{net}:Net", path, "-s", "1,8", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["precision"] == "bfloat16" and data["passed"]
    assert 0 < max(o["max_ulp"] for c in data["cases"] for o in c["outputs"]) <= 0.5
