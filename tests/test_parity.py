"""The comparison semantics (hand arithmetic), the shape plan, and verify failing where it must."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from attncli.errors import UsageError
from attncli.parity import PARITY_RULE, ParityCase, ParityReport, compare_outputs, plan_shapes


class FrozenPool(nn.Module):
    """Coordinate-attention style pooling with AdaptiveAvgPool2d((None, 1)): the dynamo exporter
    freezes its window to the example width, so the file is right at that size only."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((None, 1))
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv(self.pool(x)).sigmoid()


# ----------------------------------------------------------------------------- compare_outputs


ATOL, RTOL = 1e-5, 1e-4


def one(actual: float, expected: float):
    return compare_outputs("y", np.array([actual]), np.array([expected]), atol=ATOL, rtol=RTOL)


def test_an_element_fails_only_when_it_exceeds_both_atol_and_rtol():
    # |ref| = 1: rtol * |ref| = 1e-4. 1.05e-4 exceeds atol (1e-5) and 1e-4: it fails, where numpy's
    # isclose (|d| <= atol + rtol*|ref| = 1.1e-4) would pass it.
    assert not one(1.0 + 1.05e-4, 1.0)
    assert np.isclose(1.0 + 1.05e-4, 1.0, atol=ATOL, rtol=RTOL)  # the looser rule this replaced
    assert one(1.0 + 0.9e-4, 1.0)  # 0.9e-4 <= rtol * 1
    # ref 0: rtol * 0 = 0, so only atol can pass an element
    assert one(5e-6, 0.0)  # 5e-6 <= atol
    assert not one(2e-5, 0.0)  # 2e-5 > atol and > 0


def test_statistics_and_the_smallest_passing_atol():
    expected = np.array([1.0, 1.0, 0.0, 0.0, 100.0])
    actual = np.array([1.0 + 1.05e-4, 1.0 + 0.9e-4, 5e-6, 2e-5, 100.005])
    # rtol * |ref| = 1e-4, 1e-4, 0, 0, 1e-2
    # d            = 1.05e-4, 0.9e-4, 5e-6, 2e-5, 5e-3
    # beyond rtol:   yes,     no,     yes,  yes,  no   -> these need atol >= d
    # beyond atol:   yes,     yes,    no,   yes,  yes  -> fail: elements 0 and 3
    cmp = compare_outputs("y", actual, expected, atol=ATOL, rtol=RTOL)
    assert not cmp
    assert cmp.mismatch_ratio == pytest.approx(2 / 5)
    assert cmp.max_abs == pytest.approx(5e-3, rel=1e-9)
    assert cmp.mean_abs == pytest.approx((1.05e-4 + 0.9e-4 + 5e-6 + 2e-5 + 5e-3) / 5, rel=1e-9)
    # relative errors: the exact zeros divide by eps(float64), so max_rel is 2e-5 / eps
    assert cmp.max_rel == pytest.approx(2e-5 / np.finfo(np.float64).eps, rel=1e-6)
    # min atol = max(1.05e-4, 5e-6, 2e-5) = 1.05e-4 (0.9e-4 and 5e-3 pass on rtol whatever atol is)
    assert cmp.min_atol == pytest.approx(1.05e-4, rel=1e-9)
    assert compare_outputs("y", actual, expected, atol=1.06e-4, rtol=RTOL)
    assert not compare_outputs("y", actual, expected, atol=1.04e-4, rtol=RTOL)
    # at rtol 0 every nonzero error needs atol: min atol is the largest error, 5e-3
    assert compare_outputs("y", actual, expected, atol=ATOL, rtol=0.0).min_atol == pytest.approx(5e-3, rel=1e-9)
    # within rtol everywhere: any atol passes
    assert one(1.0 + 0.9e-4, 1.0).min_atol == 0.0


@pytest.mark.parametrize("atol, rtol", [(math.nan, RTOL), (ATOL, math.nan), (math.inf, RTOL), (ATOL, math.inf), (-1e-5, RTOL), (ATOL, -1e-4)])
def test_non_finite_or_negative_tolerances_are_refused(atol, rtol):
    # a NaN atol makes every "|d| > atol" false: it would pass any file
    with pytest.raises(UsageError, match="must be finite and zero or more"):
        compare_outputs("y", np.array([1.0]), np.array([2.0]), atol=atol, rtol=rtol)


def test_report_states_the_rule_in_json_and_in_its_message():
    good = compare_outputs("y", np.ones(4, np.float32), np.ones(4, np.float32))
    report = ParityReport("m", "f.onnx", 17, "cpu", 1e-5, 1e-4, "input", [1, 4], {}, [ParityCase((1, 4), 0, [good])])
    assert report.as_dict()["rule"] == PARITY_RULE
    assert "atol 1e-05, rtol 0.0001; " + PARITY_RULE in report.message
    bad = compare_outputs("y", np.ones(4, np.float32) * 2, np.ones(4, np.float32))
    report.cases = [ParityCase((1, 4), 0, [bad])]
    assert "100.0% of elements fail (atol 1e-05, rtol 0.0001; " + PARITY_RULE in report.message


def test_the_conventions_page_quotes_the_rule_word_for_word():
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "conventions.md"
    assert f"> {PARITY_RULE}\n" in page.read_text(encoding="utf-8")


def test_an_error_over_atol_but_within_rtol_passes():
    expected = np.array([1000.0], dtype=np.float32)
    actual = np.array([1000.05], dtype=np.float32)  # |diff| ~ 0.05 > atol, < rtol * 1000 = 0.1
    cmp = compare_outputs("y", actual, expected, atol=1e-5, rtol=1e-4)
    assert cmp and cmp.mismatch_ratio == 0.0 and cmp.min_atol == 0.0
    assert cmp.max_abs == pytest.approx(0.05, abs=1e-4)
    assert cmp.max_rel == pytest.approx(5e-5, rel=1e-2)


def test_nan_always_fails_and_infinity_only_passes_when_both_sides_agree():
    nan_both = compare_outputs("y", np.array([np.nan, 1.0], np.float32), np.array([np.nan, 1.0], np.float32))
    assert not nan_both and "PyTorch itself gives 1 NaN/Inf" in nan_both.problem and nan_both.mismatch_ratio == 0.5
    assert math.isinf(nan_both.max_abs) and math.isinf(nan_both.min_atol)
    same_inf = compare_outputs("y", np.array([np.inf, -np.inf, 2.0], np.float32), np.array([np.inf, -np.inf, 2.0], np.float32))
    assert same_inf and same_inf.max_abs == 0.0
    inf_vs_finite = compare_outputs("y", np.array([np.inf], np.float32), np.array([3.0e38], np.float32))
    assert not inf_vs_finite
    signs = compare_outputs("y", np.array([np.inf], np.float32), np.array([-np.inf], np.float32))
    assert not signs


def test_shapes_and_dtypes_must_match_exactly():
    shape = compare_outputs("y", np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    assert not shape and "shape (2, 3) vs (3, 2)" in shape.problem
    dtype = compare_outputs("y", np.zeros(3, np.float64), np.zeros(3, np.float32))
    assert not dtype and "dtype float64 vs float32" in dtype.problem
    broadcastable = compare_outputs("y", np.zeros((1, 3), np.float32), np.zeros(3, np.float32))
    assert not broadcastable


def test_report_is_truthy_only_when_every_case_passes():
    good = compare_outputs("y", np.ones(4, np.float32), np.ones(4, np.float32))
    bad = compare_outputs("y", np.ones(4, np.float32) * 2, np.ones(4, np.float32))
    report = ParityReport("m", "f.onnx", 17, "cpu", 1e-5, 1e-4, "input", ["batch", 4], {0: "batch"})
    assert not report  # no case ran: nothing was shown to agree
    report.cases = [ParityCase((1, 4), 0, [good])]
    assert report and report.message.startswith("PASSED at 1 shape")
    report.cases.append(ParityCase((3, 4), 0, [bad]))
    assert not report and report.message.startswith("FAILED at 1 of 2 cases; at 3,4")
    report.cases[1] = ParityCase((3, 4), 0, [], problem="onnxruntime fails at this shape: boom")
    assert not report and "boom" in report.message
    data = report.as_dict()
    assert data["passed"] is False and data["cases"][1]["max_abs"] is None  # JSON has no infinity
    json.dumps(data, allow_nan=False)


def test_a_reference_within_atol_of_zero_is_flagged_as_a_weak_comparison():
    tiny = np.full(4, 1e-9, np.float32)
    cmp = compare_outputs("y", tiny * 3, tiny)  # 200% off, yet within atol 1e-5
    assert cmp and cmp.ref_max_abs == pytest.approx(1e-9)
    report = ParityReport("m", "f.onnx", 17, "cpu", 1e-5, 1e-4, "input", [1, 4], {}, [ParityCase((1, 4), 0, [cmp])])
    assert report and len(report.warnings) == 1 and "weak" in report.warnings[0]
    strong = compare_outputs("y", np.ones(4, np.float32), np.ones(4, np.float32))
    assert ParityReport("m", "f", 17, "cpu", 1e-5, 1e-4, "input", [1, 4], {}, [ParityCase((1, 4), 0, [strong])]).warnings == []


# ----------------------------------------------------------------------------- the shape plan


def test_plan_varies_every_dynamic_axis_twice_with_a_non_square_size():
    base = (1, 64, 56, 56)
    # batch 1 -> 3 and 2; spatial 56 -> 56//2 = 28, then from h = 28: h - h//4 + 1 = 22 (H) and h - h//8 + 1 = 26 (W)
    assert plan_shapes(base, [0, 2, 3]) == [base, (3, 64, 28, 28), (2, 64, 22, 26)]
    assert plan_shapes(base, [0]) == [base, (3, 64, 56, 56), (2, 64, 56, 56)]
    assert plan_shapes(base, [2, 3]) == [base, (1, 64, 28, 28), (1, 64, 22, 26)]
    # 224 -> 112, then 112 - 28 + 1 = 85 and 112 - 14 + 1 = 99; a length of 128 -> 64, then 64 - 16 + 1 = 49
    assert plan_shapes((1, 3, 224, 224), [0, 2, 3]) == [(1, 3, 224, 224), (3, 3, 112, 112), (2, 3, 85, 99)]
    assert plan_shapes((2, 32, 128), [0, 2]) == [(2, 32, 128), (1, 32, 64), (3, 32, 49)]
    # a small size whose two uneven sizes would be equal (7 -> h = 3 -> 4 and 4) still gets a non-square one
    assert plan_shapes((1, 8, 7, 7), [2, 3]) == [(1, 8, 7, 7), (1, 8, 3, 3), (1, 8, 4, 5)]
    assert plan_shapes(base, []) == [base]
    assert plan_shapes(base, [0], extra=[(5, 64, 7, 9), base]) == [base, (3, 64, 56, 56), (2, 64, 56, 56), (5, 64, 7, 9)]


def test_the_shifted_and_scaled_inputs_run_at_one_small_shape_only():
    from attncli.parity import plan_cases

    shapes = [(1, 64, 56, 56), (3, 64, 28, 28), (2, 64, 22, 26)]
    # each axis at its smallest size among the shapes: batch 1, height 22, width 26
    assert plan_cases(shapes, [0, 1]) == [
        ((1, 64, 56, 56), 0, "normal"), ((1, 64, 56, 56), 1, "normal"),
        ((3, 64, 28, 28), 0, "normal"), ((3, 64, 28, 28), 1, "normal"),
        ((2, 64, 22, 26), 0, "normal"), ((2, 64, 22, 26), 1, "normal"),
        ((1, 64, 22, 26), 0, "positive"), ((1, 64, 22, 26), 1, "positive"),
        ((1, 64, 22, 26), 0, "negative"), ((1, 64, 22, 26), 1, "negative"),
        ((1, 64, 22, 26), 0, "scaled"), ((1, 64, 22, 26), 1, "scaled"),
    ]
    # --shapes-only: the file may take those shapes only, so the smallest of them (by elements)
    # 3*64*28*28 = 150,528 < 2*64*40*40 = 204,800
    assert plan_cases([(2, 64, 40, 40), (3, 64, 28, 28)], [0], only_these=True)[2:] == [
        ((3, 64, 28, 28), 0, "positive"), ((3, 64, 28, 28), 0, "negative"), ((3, 64, 28, 28), 0, "scaled"),
    ]
    assert plan_cases([(1, 4, 2, 2)], [5], ["normal"]) == [((1, 4, 2, 2), 5, "normal")]


def test_input_distributions_are_the_seeds_draw_shifted_or_scaled():
    from attncli.parity import seeded_input

    z = seeded_input((20_000,), 3)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05  # N(0, 1)
    np.testing.assert_allclose(seeded_input((20_000,), 3, "positive"), z + 2, rtol=0, atol=1e-6)
    np.testing.assert_allclose(seeded_input((20_000,), 3, "negative"), z - 2, rtol=0, atol=1e-6)
    np.testing.assert_allclose(seeded_input((20_000,), 3, "scaled"), 4 * z, rtol=0, atol=1e-6)
    # the example's own draw: modelspec seeds a generator the same way
    gen = torch.Generator().manual_seed(3)
    assert np.array_equal(z, torch.randn(20_000, generator=gen).numpy())


# ----------------------------------------------------------------------------- verify through the CLI


@pytest.fixture(scope="module")
def se_file(tmp_path_factory):
    from attncli import api

    path = tmp_path_factory.mktemp("se") / "se.onnx"
    result = api.export("se", path, opset=17, dynamic="all", verify=False)
    return result.path


def test_verify_passes_a_good_file_and_reports_json(cli, se_file):
    result = cli("verify", "se", se_file, "--format", "json", "--seeds", "2", "--shape", "input=2,64,9,13")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"model", "file", "opset", "passed", "cases"} <= set(data)
    assert data["model"] == "se" and data["opset"] == 17 and data["passed"] is True
    cases = [(tuple(c["shape"]), c["distribution"]) for c in data["cases"]]
    # every shape at N(0, 1), two seeds each; then the shifted and scaled inputs at each axis's
    # smallest size: batch 1 (the export shape's), 9 and 13 (the --shape's)
    normal = [(1, 64, 56, 56)] * 2 + [(3, 64, 28, 28)] * 2 + [(2, 64, 22, 26)] * 2 + [(2, 64, 9, 13)] * 2
    assert cases == [(s, "normal") for s in normal] + [((1, 64, 9, 13), d) for d in ("positive", "negative", "scaled") for _ in (0, 1)]
    assert [c["seed"] for c in data["cases"]] == [0, 1] * 7
    assert data["distributions"] == {"normal": "N(0, 1)", "positive": "N(+2, 1)", "negative": "N(-2, 1)", "scaled": "N(0, 4^2)"}
    for case in data["cases"]:
        assert {"shape", "seed", "max_abs", "mean_abs", "max_rel", "mismatch_ratio", "passed"} <= set(case)
        assert case["passed"] and case["max_abs"] < 1e-5 and case["mismatch_ratio"] == 0.0


def test_verify_fails_on_a_file_with_one_perturbed_initializer(cli, tmp_path):
    import onnx
    from onnx import numpy_helper

    from attncli import api

    good = api.export("eca", tmp_path / "eca.onnx", opset=17, dynamic="all", verify=False).path
    assert cli("verify", "eca", good).exit_code == 0
    model = onnx.load(good)
    (weights,) = model.graph.initializer  # ECA's only weights: the k=3 taps of its Conv1d
    array = numpy_helper.to_array(weights) + 0.5
    weights.CopyFrom(numpy_helper.from_array(array, weights.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, broken)

    table = cli("verify", "eca", broken)
    assert table.exit_code == 1
    assert "FAILED" in table.stdout and "PASSED" not in table.stdout
    data = json.loads(cli("verify", "eca", broken, "--format", "json").stdout)
    assert data["passed"] is False and not any(c["passed"] for c in data["cases"])
    assert all(c["max_abs"] > 1e-4 for c in data["cases"])


def test_a_shape_frozen_dynamo_export_fails_at_a_second_spatial_size(cli, tmp_path):
    path = tmp_path / "frozen.onnx"
    model = f"{__file__}:FrozenPool"
    exported = cli("export", model, "-s", "1,4,12,12", "--opset", "18", "--dynamic", "spatial", "-o", path)
    assert exported.exit_code == 1 and path.exists()  # written at opset 18, kept, but it fails verification
    assert "verification failed" in exported.stderr
    result = cli("verify", model, path, "-s", "1,4,12,12", "--format", "json")
    assert result.exit_code == 1
    cases = {tuple(c["shape"]): c for c in json.loads(result.stdout)["cases"] if c["distribution"] == "normal"}
    assert cases[(1, 4, 12, 12)]["passed"]  # right at the export size: a check there alone passes it
    assert not cases[(1, 4, 6, 6)]["passed"] and cases[(1, 4, 6, 6)]["max_abs"] > 1e-3


def test_the_torchscript_exporter_refuses_the_frozen_pool_with_one_line(cli, tmp_path):
    result = cli("export", f"{__file__}:FrozenPool", "-s", "1,4,12,12", "--opset", "13", "--dynamic", "spatial", "-o", tmp_path / "f.onnx")
    assert result.exit_code == 1
    assert "adaptive pooling" in result.stderr and result.stderr.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shape", "foo=1,64,8,8"], "no input named 'foo'"),
        (["--shape", "1,64,8"], "rank-4 input"),
        (["--shape", "1,32,8,8"], "fixes axis 1"),
        (["-s", "1,32,56,56"], "fixes axis 1"),
        (["--seeds", "0"], "--seeds must be 1 or more"),
        (["--atol", "nan"], "--atol and --rtol must be finite and zero or more, not nan and 0.0001"),
        (["--rtol", "inf"], "--atol and --rtol must be finite and zero or more, not 1e-05 and inf"),
        (["--atol", "-1e-5"], "--atol and --rtol must be finite and zero or more"),
    ],
)
def test_verify_input_mismatches_exit_2_with_one_line(cli, se_file, extra, message):
    result = cli("verify", "se", se_file, *extra)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_verify_rejects_missing_and_non_onnx_files_and_a_model_of_another_rank(cli, se_file, tmp_path):
    missing = cli("verify", "se", tmp_path / "nothing.onnx")
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    junk = cli("verify", "se", text)
    assert junk.exit_code == 2 and "not a valid ONNX model" in junk.stderr and junk.stderr.strip().count("\n") == 0
    rank = cli("verify", "eca1d", se_file)
    assert rank.exit_code == 2 and "rank" in rank.stderr


def test_cuda_provider_without_cuda_is_a_usage_error(cli, se_file):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime here has CUDA")
    result = cli("verify", "se", se_file, "--provider", "cuda")
    assert result.exit_code == 2 and "CUDAExecutionProvider" in result.stderr


@pytest.mark.gpu
def test_verify_on_the_cuda_provider(cli, se_file):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime here has no CUDA provider (install onnxruntime-gpu)")
    result = cli("verify", "se", se_file, "--provider", "cuda", "--format", "json")
    assert json.loads(result.stdout)["provider"] == "CUDAExecutionProvider"
