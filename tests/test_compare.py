"""attncli compare: the rows, their overheads against counts made here, and every format read back.

Expected figures are counted in the test from the modules themselves: parameters by summing
``p.numel()``, MACs as half of ``torch.utils.flop_counter.FlopCounterMode``'s FLOPs (these nets are
convolutions and linears only, which it counts as 2 per multiply-accumulate, without the bias).
"""

import csv
import io
import json
import re

import pytest

from attncli import api
from attncli.errors import UsageError

SHAPE = "1,3,64,64"
BLOCKS = ("eca", "se", "cbam")


def independent_counts(attn: str | None) -> tuple[int, int]:
    """(parameters, MACs) of resnet18 (+ ``attn``) at SHAPE, counted with torch alone."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    built = api.build("resnet18", input_shape=SHAPE, attn=attn)
    params = sum(p.numel() for p in built.module.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        built.module(built.example)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return params, flops // 2


@pytest.fixture(scope="module")
def expected():
    return {attn: independent_counts(attn) for attn in (None, *BLOCKS)}


@pytest.fixture(scope="module")
def report():
    return api.compare(attn=",".join(BLOCKS), on="resnet18", input_shape=SHAPE, latency=False)


def names():
    return ["resnet18", *(f"resnet18+{b}" for b in BLOCKS)]


def test_one_row_per_model_the_backbone_first_as_the_baseline(report):
    assert [r.name for r in report.rows] == names()
    base, *blocks = report.rows
    assert base.is_baseline and base.baseline is None and base.params_overhead is None
    for row, block in zip(blocks, BLOCKS):
        assert (row.backbone, row.block, row.baseline, row.is_baseline) == ("resnet18", block, "resnet18", False)
        assert row.input_shape == [1, 3, 64, 64]


def test_overheads_are_the_differences_of_independent_counts(report, expected):
    base_params, base_macs = expected[None]
    assert (report.row("resnet18").params, report.row("resnet18").macs) == (base_params, base_macs)
    for block in BLOCKS:
        row = report.row(f"resnet18+{block}")
        params, macs = expected[block]
        assert (row.params, row.macs) == (params, macs)
        assert row.params_overhead == params - base_params
        assert row.macs_overhead == macs - base_macs
        assert row.params_overhead_rel == pytest.approx((params - base_params) / base_params)
        assert row.macs_overhead_rel == pytest.approx((macs - base_macs) / base_macs)
        assert row.flops_overhead == row.flops - report.row("resnet18").flops
    # a sanity anchor by hand: SE (reduction 16, bias-free fcs) adds 2 C^2/16 per basic block,
    # two blocks per stage at C = 64, 128, 256, 512
    assert report.row("resnet18+se").params_overhead == sum(2 * 2 * c * c // 16 for c in (64, 128, 256, 512))


def test_csv_reads_back_with_exact_numbers(report, expected):
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert [r["name"] for r in rows] == names()
    base = rows[0]
    assert base["params_overhead"] == "" and base["is_baseline"] == "True"
    for row, block in zip(rows[1:], BLOCKS):
        params, macs = expected[block]
        assert int(row["params"]) == params and int(row["macs"]) == macs
        assert int(row["params_overhead"]) == params - expected[None][0]
        assert int(row["macs_overhead"]) == macs - expected[None][1]
        assert int(row["flops_overhead"]) == int(row["flops"]) - int(base["flops"])
        assert float(row["macs_overhead_rel"]) == pytest.approx((macs - expected[None][1]) / expected[None][1])
        assert row["baseline"] == "resnet18" and row["block"] == block and row["input_shape"] == "1x3x64x64"


PREFIX = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}


def parse_overhead(cell: str) -> tuple[float, float | None]:
    """"+87.04k (+0.74%)" -> (87040, 0.74); "+36 (+<0.01%)" -> (36, None: below 0.01%)."""
    m = re.fullmatch(r"([+-])([\d.]+)([kMG]?) \(([+-])(<?)([\d.]+)%\)", cell)
    assert m, cell
    value = float(m[2]) * PREFIX[m[3]] * (-1 if m[1] == "-" else 1)
    return value, None if m[5] else float(m[6]) * (-1 if m[4] == "-" else 1)


def markdown_table(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]


def test_markdown_reads_back(report, expected):
    header, align, *body = markdown_table(report.to_markdown())
    assert header[:3] == ["model", "params", "Δ params"] and "Δ MACs" in header
    assert align[0] == ":---" and set(align[1:]) == {"---:"}  # numbers right-aligned
    assert [r[0] for r in body] == names() and all(len(r) == len(header) for r in body)
    assert body[0][header.index("Δ params")] == "-"
    for row, block in zip(body[1:], BLOCKS):
        for column, index in (("Δ params", 0), ("Δ MACs", 1)):
            diff = expected[block][index] - expected[None][index]
            shown, percent = parse_overhead(row[header.index(column)])
            assert shown == pytest.approx(diff, abs=0.005 * 1e3 if diff >= 1e3 else 0.5)  # two decimals of the prefix
            if percent is None:
                assert 0 < diff / expected[None][index] < 1e-4
            else:
                assert percent == pytest.approx(100 * diff / expected[None][index], abs=0.005)


def test_latex_is_a_booktabs_table_with_one_row_per_model(report):
    text = report.to_latex()
    lines = text.splitlines()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in lines
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert re.search(r"\\begin\{tabular\}\{lr+\}", text) and text.rstrip().endswith(r"\end{tabular}")
    header = lines[lines.index(r"\toprule") + 1]
    body = lines[lines.index(r"\midrule") + 1: lines.index(r"\bottomrule")]
    assert [row.split(" & ")[0] for row in body] == names()
    columns = header.count(" & ")
    assert all(row.endswith(r" \\") and row.count(" & ") == columns for row in body)
    assert r"\%" in text and not re.search(r"(?<!\\)%", "\n".join(body))  # every % escaped
    assert r"$\Delta$" in header


def test_named_models_come_with_their_registry_baseline_and_latex_escapes_underscores():
    report = api.compare(["eca_cnn1d"], latency=False)
    assert [r.name for r in report.rows] == ["cnn1d", "eca_cnn1d"]  # its registry baseline first
    assert report.row("eca_cnn1d").baseline == "cnn1d" and report.row("eca_cnn1d").block == "eca1d"
    body = report.to_latex().split(r"\toprule")[1]
    assert r"eca\_cnn1d & " in body and not re.search(r"(?<!\\)_", body)


def test_json_keys_and_environment(report):
    data = json.loads(json.dumps(report.as_dict()))
    assert {"rows", "sort", "baseline", "latency", "export_opset", "conventions", "environment", "notes"} <= set(data)
    assert data["environment"]["torch"] and data["environment"]["seed"] == 0
    row = data["rows"][1]
    assert {"name", "params", "params_overhead", "params_overhead_rel", "macs", "macs_overhead", "flops",
            "flops_overhead", "latency_p50_ms", "latency_within_noise", "exports", "parity_max_abs"} <= set(row)
    assert row["latency_p50_ms"] is None and row["exports"] is None


def test_sort_keeps_the_baseline_first_and_orders_the_group(report):
    from attncli.compare import sort_rows

    shuffled = list(reversed(report.rows))  # cbam, se, eca, then the baseline
    assert [r.name for r in sort_rows(shuffled, "params")] == ["resnet18", "resnet18+eca", "resnet18+se", "resnet18+cbam"]
    assert [r.name for r in sort_rows(shuffled, "name")] == ["resnet18", "resnet18+cbam", "resnet18+eca", "resnet18+se"]
    assert [r.name for r in sort_rows(shuffled, "order")] == [r.name for r in shuffled[:3]] + ["resnet18"]


def test_baseline_none_has_no_overheads():
    report = api.compare(attn="eca", on="resnet18", input_shape=SHAPE, latency=False, baseline="none")
    assert [r.name for r in report.rows] == ["resnet18+eca"]
    assert report.rows[0].baseline is None and report.rows[0].params_overhead is None


def test_a_users_block_file_goes_in_like_a_registered_one(tmp_path):
    (tmp_path / "gate.py").write_text(
        "from torch import nn\n\n"
        "class Gate(nn.Module):\n"
        "    def __init__(self, channels):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Conv2d(channels, channels, 1)\n"
        "    def forward(self, x):\n"
        "        return x * self.fc(x).sigmoid()\n"
    )
    report = api.compare(attn=f"{tmp_path / 'gate.py'}:Gate", on="resnet18", input_shape=SHAPE, latency=False)
    row = report.row("resnet18+Gate")
    # a 1x1 conv with bias, C*C + C, after every basic block (2 per stage)
    assert row.params_overhead == sum(2 * (c * c + c) for c in (64, 128, 256, 512))
    assert row.block == "Gate" and row.baseline == "resnet18"


def test_latency_interleaved_with_its_interval_and_overhead():
    report = api.compare(attn="eca1d", on="cnn1d", device="cpu", min_time=0.05)
    base, eca = report.rows
    for row in (base, eca):
        assert row.latency_ci_low_ms <= row.latency_p50_ms <= row.latency_ci_high_ms and row.latency_samples >= 1
    assert eca.latency_overhead_ms == pytest.approx(eca.latency_p50_ms - base.latency_p50_ms)
    assert eca.latency_overhead_rel == pytest.approx(eca.latency_overhead_ms / base.latency_p50_ms)
    assert isinstance(eca.latency_within_noise, bool) and base.latency_overhead_ms is None
    header, _, *body = markdown_table(report.to_markdown())
    cell = body[1][header.index("Δ p50")]
    assert cell == "within noise" or re.fullmatch(r"[+-][\d.]+ ms \([+-]<?[\d.]+%\)", cell)


@pytest.mark.slow  # export and onnxruntime verification of two models: seconds
def test_export_at_an_opset_reports_parity():
    report = api.compare(attn="eca1d", on="cnn1d", latency=False, export_opset=17)
    assert [r.exports for r in report.rows] == [True, True]
    assert all(0 <= r.parity_max_abs < 1e-4 for r in report.rows)
    header, _, *body = markdown_table(report.to_markdown())
    assert "exports at opset 17" in header and body[0][header.index("exports at opset 17")] == "yes"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attn": "nope", "on": "resnet18"}, "nope"),
        ({"attn": "eca,,se", "on": "resnet18"}, "empty name"),
        ({"attn": "eca,eca", "on": "resnet18"}, "listed twice"),
        ({"attn": "eca"}, "--on"),
        ({"on": "resnet18"}, "--attn"),
        ({}, "nothing to compare"),
        ({"attn": "eca", "on": "eca_resnet50"}, "does not take an attention block"),
        ({"attn": "resnet18", "on": "resnet18"}, "not an attention block"),
        ({"attn": "eca", "on": "resnet18", "latency": False, "sort": "latency"}, "without timing"),
        ({"attn": "eca", "on": "resnet18", "sort": "colour"}, "cannot sort"),
    ],
)
def test_mistakes_are_one_line_usage_errors_before_any_building(kwargs, message):
    with pytest.raises(UsageError) as info:
        api.compare(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------- the command


def test_cli_formats(cli):
    # the tiny 1-D CNN: the formats' contents are checked on the library's report above
    argv = ["compare", "--attn", "eca1d", "--on", "cnn1d", "--no-latency"]
    table = cli(*argv)
    assert table.exit_code == 0, table.stderr
    assert "cnn1d+eca1d" in table.stdout and "+3" in table.stdout and "+<0.01%" in table.stdout
    rows = list(csv.DictReader(io.StringIO(cli(*argv, "-f", "csv").stdout)))
    assert [r["name"] for r in rows] == ["cnn1d", "cnn1d+eca1d"]
    assert rows[1]["params_overhead"] == "3"  # one bias-free 3-tap conv1d (32 channels: k = 3)
    assert json.loads(cli(*argv, "-f", "json").stdout)["rows"][1]["params_overhead"] == 3
    latex = cli(*argv, "-f", "latex").stdout
    assert r"\toprule" in latex and r"\bottomrule" in latex
    assert markdown_table(cli(*argv, "-f", "markdown").stdout)[3][0] == "cnn1d+eca1d"


def test_cli_writes_the_report_file(cli, tmp_path):
    target = tmp_path / "table.tex"
    result = cli("compare", "--attn", "eca1d", "--on", "cnn1d", "--no-latency", "-f", "latex", "-o", target)
    assert result.exit_code == 0 and result.stdout == ""
    assert r"cnn1d+eca1d & " in target.read_text()


def test_cli_plot_is_written(cli, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "overhead.png"
    result = cli("compare", "--attn", "eca1d", "--on", "cnn1d", "--device", "cpu", "--min-time", "0.05", "--plot", target, "-f", "csv")
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 1000
    refused = cli("compare", "--attn", "eca1d", "--on", "cnn1d", "--no-latency", "--plot", tmp_path / "none.png")
    assert refused.exit_code == 2 and "--no-latency" in refused.stderr and not (tmp_path / "none.png").exists()


def test_cli_mistake_is_one_line_exit_2(cli):
    result = cli("compare", "--attn", "eca,nope", "--on", "resnet18")
    assert result.exit_code == 2 and result.stdout == ""
    assert "nope" in result.stderr and result.stderr.strip().count("\n") == 0


def test_cli_help_ends_with_examples(cli):
    result = cli("compare", "--help")
    assert result.exit_code == 0
    examples = result.stdout[result.stdout.rindex("Examples"):]
    assert "attncli compare --attn eca,se,cbam,sk --on resnet50,mobilenetv2" in examples
    assert examples.count("attncli compare ") == 3
