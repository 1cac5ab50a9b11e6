"""`make bench`: wall times of the commands users run, and onnxruntime vs PyTorch latency per backbone.

Each CLI figure is the median of several runs of the real command in a fresh process (torch import
included). Results are printed and written to benchmarks/RESULTS.md with the date and machine.
Targets (from the issues): --help and list < 0.5 s; profile eca_resnet50 < 10 s; export sknet
--opset 11 with verification < 15 s; the whole registry's check at opsets 11 and 17 with -j 2
< 60 s; onnxruntime not slower than eager PyTorch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def wall(argv: list[str], runs: int, cwd: str) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "attncli", *argv], cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"`attncli {' '.join(argv)}` failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return statistics.median(times), times


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs and only three backbones")
    args = parser.parse_args()
    runs_fast, runs_slow = (3, 1) if args.quick else (7, 3)

    import torch

    from attncli import registry
    from attncli.bench import bench
    from attncli.modelspec import ModelRequest

    commands = [
        ("attncli --help", ["--help"], runs_fast, "< 0.5 s"),
        ("attncli list", ["list"], runs_fast, "< 0.5 s"),
        ("attncli profile eca_resnet50 (CPU)", ["profile", "eca_resnet50", "--device", "cpu"], runs_slow, "< 10 s"),
        ("attncli export sknet --opset 11 (+verify)", ["export", "sknet", "--opset", "11", "-o", "sknet.onnx", "--force"], runs_slow, "< 15 s"),
        ("attncli check --kind block --opset 11 --opset 17 -j 2", ["check", "--kind", "block", "--opset", "11", "--opset", "17", "-j", "2"], 1, "-"),
        # the whole registry: minutes, and the figure issue 11 asks for (146 s before on 2 cores)
        ("attncli check --opset 11 --opset 17 -j 2 (whole registry)", ["check", "--opset", "11", "--opset", "17", "-j", "2"], 1, "< 60 s"),
    ]
    if args.quick:  # the whole registry takes minutes
        commands = [c for c in commands if "whole registry" not in c[0]]
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv, runs, target in commands:
            median, times = wall(argv, runs, tmp)
            spread = f" (runs: {', '.join(f'{t:.2f}' for t in times)})" if len(times) > 1 else ""
            rows.append((label, f"{median:.2f} s{spread}", target))
            print(f"{label:<55} {median:8.2f} s  target {target}", flush=True)

    names = [s.name for s in registry.list_specs(kind="backbone")]
    if args.quick:
        names = [n for n in names if n in ("resnet50", "eca_resnet50", "sknet50")]
    ratio_rows = []
    for name in names:
        result = bench(ModelRequest(name), batch_sizes=(1,), warmup=3, iters=15, device="cpu")
        row = result.rows[0]
        eager, ort = row.runtimes[0], row.runtimes[1]
        ratio_rows.append((name, eager.p50_ms, ort.p50_ms, row.ratio))
        print(f"{name:<24} eager p50 {eager.p50_ms:9.2f} ms  onnxruntime p50 {ort.p50_ms:9.2f} ms  ratio {row.ratio:.2f}", flush=True)

    machine = f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}"
    lines = [
        "# Benchmarks",
        "",
        f"Measured {dt.date.today().isoformat()} by `make bench` on: {machine}. No GPU.",
        "Each command is a fresh process (torch import included); the figure is the median of the runs shown.",
        "",
        "| what | wall time | target |",
        "|---|---|---|",
        *[f"| `{a}` | {b} | {c} |" for a, b, c in rows],
        "",
        "## onnxruntime vs eager PyTorch, batch 1, CPU, default input, 15 interleaved iterations",
        "",
        "ratio = onnxruntime p50 / PyTorch p50 (below 1: onnxruntime faster).",
        "",
        "| backbone | PyTorch p50 ms | onnxruntime p50 ms | ratio |",
        "|---|---:|---:|---:|",
        *[f"| {n} | {e:.2f} | {o:.2f} | {r:.2f} |" for n, e, o, r in ratio_rows],
        "",
    ]
    if not args.quick:
        (HERE / "RESULTS.md").write_text("\n".join(lines))
        print(f"written {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
