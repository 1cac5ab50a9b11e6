"""`attncli bench`: eager PyTorch vs onnxruntime on the same inputs."""

import importlib.util
import json

import pytest


def test_bench_reports_both_runtimes_and_their_ratio(cli):
    result = cli("bench", "eca", "--input-shape", "1,64,16,16", "-b", "1", "-b", "3", "--iters", "6", "--warmup", "1", "--device", "cpu", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "eca" and data["device"] == "cpu" and data["provider"] == "CPUExecutionProvider"
    assert [row["batch_size"] for row in data["rows"]] == [1, 3]
    for row in data["rows"]:
        lat = {r["runtime"]: r for r in row["runtimes"]}
        assert set(lat) == {"pytorch", "onnxruntime"}
        for r in lat.values():
            assert 0 < r["min_ms"] <= r["p50_ms"] <= r["p90_ms"]
            assert r["throughput"] == pytest.approx(row["batch_size"] * 1000 / r["mean_ms"])
        assert row["ratio"] == pytest.approx(lat["onnxruntime"]["p50_ms"] / lat["pytorch"]["p50_ms"])


def test_bench_adaptive_samples_intervals_and_verdict(cli):
    result = cli("bench", "se", "--input-shape", "1,64,16,16", "--min-time", "0.05", "--threads", "1", "--device", "cpu", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["iters"] is None and data["min_time_s"] == 0.05 and data["threads"] == 1
    (row,) = data["rows"]
    lat = {r["runtime"]: r for r in row["runtimes"]}
    for r in lat.values():
        assert r["samples"] >= 6 and r["block_size"] >= 1
        assert r["min_ms"] <= r["ci_low_ms"] <= r["p50_ms"] <= r["ci_high_ms"]
    eager, ort = lat["pytorch"], lat["onnxruntime"]
    overlap = eager["ci_low_ms"] <= ort["ci_high_ms"] and ort["ci_low_ms"] <= eager["ci_high_ms"]
    assert row["within_noise"] is overlap


def test_small_ratios_keep_their_digits():
    from attncli.cli.render import fmt_ratio

    assert fmt_ratio(0.0042) == "0.0042"  # never "0.00"
    assert fmt_ratio(0.05) == "0.05" and fmt_ratio(0.4167) == "0.42" and fmt_ratio(1.0) == "1.00"


def test_bench_table_names_the_ratio(cli):
    result = cli("bench", "se", "--input-shape", "1,64,8,8", "--iters", "3", "--warmup", "0")
    assert result.exit_code == 0, result.stderr
    assert "onnxruntime/pytorch p50 ratio" in result.stdout and "pytorch" in result.stdout


def test_bench_bad_settings_are_usage_errors(cli):
    assert cli("bench", "eca", "--iters", "0").exit_code == 2
    assert cli("bench", "eca", "--min-time", "0").exit_code == 2
    assert cli("bench", "eca", "--opset", "3").exit_code == 2
    out = cli("bench", "eca", "--device", "tpu")
    assert out.exit_code == 2 and "--device" in out.stderr


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed")
def test_plot_without_matplotlib_says_what_to_install(cli, tmp_path):
    out = cli("bench", "eca", "--input-shape", "1,64,8,8", "--iters", "2", "--plot", str(tmp_path / "p.png"))
    assert out.exit_code == 2 and "pip install 'attncli[plot]'" in out.stderr
    assert not (tmp_path / "p.png").exists()
