"""attncli.plots: the figures of `bench --plot` and `compare --plot`, written as PNG, SVG or PDF."""

import sys
from types import SimpleNamespace

import pytest

from attncli.errors import UsageError
from attncli.plots import check_plot_target, plain_number, spans_decades

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENVIRONMENT = {"attncli": "9.9.9", "torch": "2.0.0", "python": "3.11.4", "cpu": "Test CPU", "torch_threads": 2, "seed": 0}


@pytest.mark.parametrize(
    "value, text", [(1000, "1,000"), (250, "250"), (12.5, "12.5"), (1.5, "1.5"), (1, "1"), (0.02, "0.02"), (0.00005, "0.00005"), (-20, "-20"), (0, "0")]
)
def test_tick_labels_are_plain_numbers(value, text):
    assert plain_number(value) == text


def test_a_range_spans_decades_when_its_ends_differ_by_more_than_ten_times():
    assert spans_decades([1, 11]) and not spans_decades([1, 10]) and not spans_decades([2, 19])
    assert not spans_decades([-1, 100]) and not spans_decades([])


def bench_result(batches=(1, 2, 4, 8, 16)):
    """A bench result as attncli.bench returns it (the attributes the plot reads): eager PyTorch
    slower than onnxruntime, latency linear in the batch size."""

    def runtime(name, batch, ms):
        return SimpleNamespace(runtime=name, batch_size=batch, p50_ms=ms, p90_ms=ms * 1.1)

    rows = [SimpleNamespace(batch_size=b, runtimes=[runtime("pytorch", b, 2.0 * b), runtime("onnxruntime", b, 0.05 * b)]) for b in batches]
    return SimpleNamespace(model="eca_resnet18", device="cpu", threads=2, environment=ENVIRONMENT, rows=rows)


COMPARE_ROWS = [
    {"name": "resnet18", "params": 11_689_512, "macs": 1_814_083_072, "latency_overhead_rel": 0.0, "latency_within_noise": True},
    {"name": "eca_resnet18", "params": 11_689_556, "macs": 1_814_085_760, "latency_overhead_rel": 0.02, "latency_within_noise": True},
    {"name": "se_resnet18", "params": 11_778_592, "macs": 1_814_617_312, "latency_overhead_rel": 0.15, "latency_within_noise": False},
    {"name": "se", "params": 524_288, "macs": 600_000, "latency_overhead_rel": 0.4, "latency_within_noise": False},
    {"name": "untimed", "params": 2_000_000, "macs": 3_000_000, "latency_overhead_rel": None, "latency_within_noise": False},
]


def tick_texts(axis):
    return [t.get_text() for t in axis.get_ticklabels(which="both") if t.get_text()]


def test_latency_figure_is_log_log_with_plain_ticks_and_the_environment():
    pytest.importorskip("matplotlib")
    from attncli.plots import latency_figure

    fig = latency_figure(bench_result())
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    xs, ys = tick_texts(ax.xaxis), tick_texts(ax.yaxis)
    assert xs == ["1", "2", "4", "8", "16"]  # the batch sizes themselves, not 2^n
    assert ys and all("^" not in t and "$" not in t for t in ys)
    assert "0.1" in ys and "10" in ys  # onnxruntime at 0.05 to 0.8 ms, PyTorch at 2 to 32 ms
    footer = fig.get_supxlabel()
    assert "attncli 9.9.9" in footer and "torch 2.0.0" in footer and "2 threads" in footer


def test_compare_figure_puts_one_labelled_point_per_timed_model():
    pytest.importorskip("matplotlib")
    from attncli.plots import compare_figure

    fig = compare_figure(COMPARE_ROWS, "params", environment=ENVIRONMENT)
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert {"resnet18", "eca_resnet18", "se_resnet18", "se"} <= set(labels)
    assert "not timed: untimed" in labels
    assert ax.get_xscale() == "log"  # 0.5 M to 11.8 M parameters: more than a decade
    assert sum(len(c.get_offsets()) for c in ax.collections) == 4
    assert all(t.endswith("%") for t in tick_texts(ax.yaxis))
    assert "attncli 9.9.9" in fig.get_supxlabel()


def test_compare_figure_keeps_linear_axes_within_a_decade():
    pytest.importorskip("matplotlib")
    from attncli.plots import compare_figure

    rows = [r for r in COMPARE_ROWS if r["name"].endswith("resnet18")]
    ax = compare_figure(rows, "macs", environment=ENVIRONMENT).axes[0]
    assert ax.get_xscale() == "linear" and "MACs (G, 10^9)" == ax.get_xlabel()


def test_compare_without_any_latency_is_a_usage_error(tmp_path):
    pytest.importorskip("matplotlib")
    from attncli.plots import plot_compare

    rows = [{**r, "latency_overhead_rel": None} for r in COMPARE_ROWS]
    with pytest.raises(UsageError, match="no model has a latency overhead"):
        plot_compare(rows, tmp_path / "c.png")
    with pytest.raises(UsageError, match="params or macs"):
        plot_compare(COMPARE_ROWS, tmp_path / "c.png", x="flops")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix, head", [("png", PNG_SIGNATURE), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_plots_are_written_in_the_format_of_the_suffix(tmp_path, suffix, head):
    pytest.importorskip("matplotlib")
    from attncli.plots import plot_compare, plot_latency

    for name, draw in (("latency", lambda p: plot_latency(bench_result(), p)), ("compare", lambda p: plot_compare(COMPARE_ROWS, p, environment=ENVIRONMENT))):
        path = tmp_path / f"{name}.{suffix}"
        assert draw(path) == path
        data = path.read_bytes()
        assert data.startswith(head) and len(data) > 10_000, (name, len(data))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"compare.{suffix}", f"latency.{suffix}"]  # no temporary left


def test_a_bad_target_fails_before_any_work(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(UsageError, match="is a folder"):
        check_plot_target(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        check_plot_target(tmp_path / "missing" / "p.png")
    with pytest.raises(UsageError, match=r"\.png, \.pdf, \.svg"):
        check_plot_target(tmp_path / "p.txt")


def test_without_matplotlib_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: its import fails
    with pytest.raises(UsageError, match=r"pip install 'attncli\[plot\]'"):
        check_plot_target(tmp_path / "p.png")


def test_bench_plot_writes_a_png(cli, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.png"
    result = cli("bench", "se", "--input-shape", "1,16,8,8", "-b", "1", "-b", "4", "--device", "cpu", "--plot", path)
    assert result.exit_code == 0, result.stderr
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    assert f"plot written to {path}" in " ".join(result.stdout.split())
