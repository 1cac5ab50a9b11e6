"""int8 quantization of an exported file with ``onnxruntime.quantization``, and its judgement.

A quantized file cannot pass an elementwise tolerance made for float32 (int8 rounds every weight to
one of 255 steps), and a looser tolerance says little about whether the model still does its job.
So it is judged as deployment judges it, over ``eval_samples`` seeded inputs that calibration never
saw, against PyTorch in float32:

- cosine similarity of the flattened outputs, the smallest over the samples (the gate);
- max and mean absolute error relative to the output's range (max - min of PyTorch's output), so
  that a figure means the same for logits and for features;
- for a classifier (a 2-D output, N x classes), the top-1 agreement: the share of rows whose argmax
  is PyTorch's (the gate).

Modes (``QUANTIZE_MODES``):

- ``dynamic``: ``quantize_dynamic``, weights int8 per output channel, activations quantized at run
  time. Conv becomes ConvInteger, MatMul/Gemm MatMulInteger: the CPU execution provider runs both
  (onnxruntime >= 1.13); the CUDA one has no ConvInteger and runs those nodes on the CPU. Every
  operator type onnxruntime can quantize dynamically is quantized.
- ``static``: ``quantize_static`` in the QDQ format (QuantizeLinear/DequantizeLinear pairs, which
  every runtime reads), weights and activations int8, weights per output channel, with activation
  ranges calibrated (MinMax) on seeded draws of the model's example distribution, or on a folder of
  ``.npy`` files. Per-channel DequantizeLinear takes its ``axis`` from opset 13 on (below, onnx's
  checker and onnxruntime reject the file), so static needs ``QDQ_MIN_OPSET``.

The quantized file keeps the float file's opset and attncli metadata (``attncli.quantization``
added) and is written atomically next to it, ``<stem>_int8.onnx`` (``quantized_path``).

Imports onnx, onnxruntime and torch inside functions only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator, Sequence

from attncli.errors import CheckFailed, UsageError

QUANTIZE_MODES = ("dynamic", "static")
# Per-channel QDQ: DequantizeLinear's ``axis`` attribute arrived in opset 13.
QDQ_MIN_OPSET = 13
DEFAULT_CALIBRATION_SAMPLES = 16
DEFAULT_EVAL_SAMPLES = 32
# Thresholds, measured on eca_resnet18 at 1x3x64x64 with seeded (untrained) weights, 32 samples:
# cosine 0.9998 (dynamic) and 0.9997 (static); a static quantization calibrated on all-zero inputs
# (every activation range collapsed) gives 0.007. An untrained net's logits lie close together, so
# int8 noise flips near-ties: top-1 agreement measured 0.91 (dynamic) and 0.97 (static), against 0.0
# for the broken one. A trained net separates its classes and agrees far more often; raise the bar
# with --min-top1 there.
DEFAULT_MIN_COSINE = 0.99
DEFAULT_MIN_TOP1 = 0.8
# Seeds of the inputs, offset from the model's seed: calibration and evaluation never share an input,
# and neither is the example (seed + 0) that verification starts from.
CALIBRATION_SEED_OFFSET = 10_000
EVAL_SEED_OFFSET = 20_000
METADATA_KEY = "attncli.quantization"


def quantized_path(path: str | Path) -> Path:
    """``model_opset17.onnx`` -> ``model_opset17_int8.onnx``, in the same folder."""
    path = Path(path)
    return path.with_name(f"{path.stem}_int8{path.suffix or '.onnx'}")


def check_options(
    mode: str, opset: int | str | None, *, calibration_samples: int | None = None, calibration_data: str | Path | None = None,
    eval_samples: int | None = None, min_cosine: float | None = None, min_top1: float | None = None,
) -> None:
    """Every quantization option checked before anything is built or exported (usage errors)."""
    if mode not in QUANTIZE_MODES:
        raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, not {mode!r}.", option="quantize")
    if mode == "static":
        if not isinstance(opset, int) or opset < QDQ_MIN_OPSET:
            shown = "min (which may choose 11)" if isinstance(opset, str) else str(opset)
            raise UsageError(
                f"static int8 (per-channel QDQ) needs opset {QDQ_MIN_OPSET} or newer, not {shown}: give --opset {QDQ_MIN_OPSET}"
                " or newer, or --quantize dynamic, which works from opset 11.", option="opset",
            )
    else:
        given = "calibration_data" if calibration_data is not None else "calibration_samples" if calibration_samples is not None else None
        if given:
            raise UsageError("calibration is for --quantize static only; dynamic quantization needs no data.", option=given)
    if calibration_samples is not None and (isinstance(calibration_samples, bool) or int(calibration_samples) < 1):
        raise UsageError(f"the number of calibration samples must be 1 or more, not {calibration_samples}.", option="calibration_samples")
    if calibration_data is not None and calibration_samples is not None:
        raise UsageError("give calibration data or a number of seeded calibration samples, not both.", option="calibration_data")
    if calibration_data is not None:
        calibration_files(calibration_data)
    if eval_samples is not None and (isinstance(eval_samples, bool) or int(eval_samples) < 1):
        raise UsageError(f"the number of evaluation samples must be 1 or more, not {eval_samples}.", option="eval_samples")
    if min_cosine is not None and not (math.isfinite(min_cosine) and -1.0 <= min_cosine <= 1.0):
        raise UsageError(f"the minimum cosine similarity must be between -1 and 1, not {min_cosine:g}.", option="min_cosine")
    if min_top1 is not None and not (math.isfinite(min_top1) and 0.0 <= min_top1 <= 1.0):
        raise UsageError(f"the minimum top-1 agreement must be between 0 and 1, not {min_top1:g}.", option="min_top1")


def calibration_files(folder: str | Path) -> list[Path]:
    """The ``.npy`` files of a calibration folder, sorted by name; a missing or empty folder is a usage error."""
    path = Path(folder)
    if not path.is_dir():
        what = "no such folder" if not path.exists() else "not a folder"
        raise UsageError(f"calibration data {folder}: {what}; give a folder of .npy input arrays.", option="calibration_data")
    files = sorted(p for p in path.iterdir() if p.suffix == ".npy" and p.is_file())
    if not files:
        raise UsageError(f"calibration data {folder} holds no .npy files; save each input with numpy.save.", option="calibration_data")
    return files


def load_calibration(folder: str | Path, shape: Sequence[int], dynamic_axes: dict[int, str] | Sequence[int] = ()) -> list[Any]:
    """The calibration inputs of ``folder``: each ``.npy`` file one input of ``shape`` (the example's),
    or that shape without its batch axis (one sample, the batch axis added); an axis in
    ``dynamic_axes`` may take any size. Float arrays are cast to float32; anything else, or another
    shape, is a usage error naming the file."""
    import numpy as np

    shape = tuple(int(d) for d in shape)
    free = set(dynamic_axes)
    inputs = []
    for file in calibration_files(folder):
        try:
            array = np.load(file, allow_pickle=False)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"cannot read calibration file {file}: {first}", option="calibration_data") from None
        if not np.issubdtype(array.dtype, np.floating):
            raise UsageError(f"calibration file {file} holds {array.dtype} values; the model takes float32.", option="calibration_data")
        if array.ndim == len(shape) - 1:
            array = array[None]
        fits = array.ndim == len(shape) and all(a == s or axis in free for axis, (a, s) in enumerate(zip(array.shape, shape)))
        if not fits:
            want = ",".join("*" if axis in free else str(s) for axis, s in enumerate(shape))
            raise UsageError(
                f"calibration file {file} has shape {','.join(map(str, array.shape))}; the model takes {want}"
                " (* any size), or that without the batch axis.", option="calibration_data",
            )
        inputs.append(np.ascontiguousarray(array, dtype=np.float32))
    return inputs


def seeded_calibration(shape: Sequence[int], seed: int, samples: int = DEFAULT_CALIBRATION_SAMPLES) -> list[Any]:
    """``samples`` draws of the model's example distribution (N(0, 1)), seeds ``seed + CALIBRATION_SEED_OFFSET`` on."""
    from attncli.parity import seeded_input

    start = int(seed) + CALIBRATION_SEED_OFFSET
    return [seeded_input(shape, s) for s in range(start, start + int(samples))]


# ----------------------------------------------------------------------------- quantize


@contextlib.contextmanager
def _quantizer_quiet() -> Iterator[None]:
    """onnxruntime.quantization warns through the root logger (a bias that is not an initializer, a
    hint to pre-process): one line per node, around attncli's own output."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol: ``get_next()`` -> a feed dict, then None."""

    def __init__(self, name: str, inputs: Sequence[Any]) -> None:
        self._feeds = iter([{name: x} for x in inputs])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # the calibrator reads once; kept for the protocol's newer form
        pass


def quantize_onnx(
    source: str | Path, target: str | Path, mode: str, *, input_name: str, calibration: Sequence[Any] = (),
    force: bool = False, record: dict[str, str] | None = None,
) -> Path:
    """Quantize the float file ``source`` into ``target`` (``mode`` one of ``QUANTIZE_MODES``; static
    calibrates on ``calibration``, arrays fed to ``input_name``), at the source's opset, with its
    metadata plus ``attncli.quantization`` (``record``: more entries). Written as export writes: a
    temporary name, the checker and the opset read back, then put in place without replacing a file
    unless ``force``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    from attncli.onnx_export import _write_checked, check_destination, file_opset, remove_stale_temp_files

    target = check_destination(target, Path(target).stem, 0, force)
    opset = file_opset(source)
    if mode not in QUANTIZE_MODES:
        raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, not {mode!r}.", option="quantize")
    if mode == "static" and (opset or 0) < QDQ_MIN_OPSET:
        raise UsageError(f"static int8 (per-channel QDQ) needs opset {QDQ_MIN_OPSET} or newer; {source} is at opset {opset}.", option="opset")
    if mode == "static" and not calibration:
        raise UsageError("static quantization needs at least one calibration input.", option="calibration_samples")

    class Reader(_Feeds, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="attncli-quantize-") as folder:
        out = Path(folder) / "int8.onnx"
        try:
            with _quantizer_quiet():
                if mode == "dynamic":
                    quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True)
                else:
                    quantize_static(
                        str(source), str(out), Reader(input_name, calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    )
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise CheckFailed(f"onnxruntime's {mode} quantization of {source} failed: {first}") from exc
        model = onnx.load(str(out))
    entries = {p.key: p.value for p in model.metadata_props}
    entries.update({METADATA_KEY: mode, **(record or {})})
    del model.metadata_props[:]
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    data = model.SerializeToString()
    remove_stale_temp_files(target.parent)
    _write_checked(data, target, target.parent, int(opset or 0), f"{mode} int8 quantizer", force)
    return target


# ----------------------------------------------------------------------------- judge


@dataclass
class QuantReport:
    """A quantized file against PyTorch in float32 over seeded inputs; truthy when the figures meet
    the thresholds (``min_cosine``; ``min_top1`` for a classifier)."""

    model: str
    file: str
    source: str  # the float file it was made from
    mode: str
    opset: int | None
    provider: str
    input_shape: tuple[int, ...]
    samples: int
    first_seed: int  # evaluation inputs: seeds first_seed, first_seed + 1, ...
    min_cosine: float
    min_top1: float
    cosine_min: float = math.nan  # the smallest over samples (and outputs)
    cosine_mean: float = math.nan
    max_error_rel_range: float = math.nan  # max |int8 - float| / (max - min of PyTorch's output)
    mean_error_rel_range: float = math.nan
    top1_agreement: float | None = None  # None: no 2-D output, not a classifier
    calibration: dict[str, Any] | None = None  # static: where the calibration inputs came from
    float_bytes: int = 0
    file_bytes: int = 0
    problem: str = ""  # onnxruntime could not run the file

    @property
    def passed(self) -> bool:
        if self.problem:
            return False
        top1_ok = self.top1_agreement is None or self.top1_agreement >= self.min_top1
        return self.cosine_min >= self.min_cosine and top1_ok  # NaN compares False: it fails

    def __bool__(self) -> bool:
        return self.passed

    @property
    def figures(self) -> str:
        """The figures in one phrase: cosine, top-1 and the errors relative to the range."""
        top1 = f", top-1 agreement {self.top1_agreement:.1%}" if self.top1_agreement is not None else ""
        return (
            f"cosine min {self.cosine_min:.4f}{top1}, max error {self.max_error_rel_range:.2%} and mean"
            f" {self.mean_error_rel_range:.2%} of the output's range"
        )

    @property
    def message(self) -> str:
        """One line: the verdict, the figures, and what fell short."""
        where = f"int8 {self.mode} over {self.samples} seeded input{'s' * (self.samples != 1)}"
        if self.problem:
            return f"FAILED: {where}: {self.problem}"
        if self.passed:
            top1 = f", top-1 >= {self.min_top1:g}" if self.top1_agreement is not None else ""
            return f"PASSED {where}: {self.figures} (thresholds: cosine >= {self.min_cosine:g}{top1})"
        short = []
        if not self.cosine_min >= self.min_cosine:
            short.append(f"cosine min {self.cosine_min:.4f} < {self.min_cosine:g}")
        if self.top1_agreement is not None and not self.top1_agreement >= self.min_top1:
            short.append(f"top-1 agreement {self.top1_agreement:.1%} < {self.min_top1:.0%}")
        return f"FAILED {where}: {'; '.join(short)} ({self.figures})"

    def as_dict(self) -> dict[str, Any]:
        def finite(value: float | None) -> float | None:
            return value if value is not None and math.isfinite(value) else None

        return {
            "mode": self.mode,
            "file": self.file,
            "source": self.source,
            "model": self.model,
            "opset": self.opset,
            "provider": self.provider,
            "input_shape": list(self.input_shape),
            "samples": self.samples,
            "first_seed": self.first_seed,
            "calibration": self.calibration,
            "thresholds": {"min_cosine": self.min_cosine, "min_top1": self.min_top1},
            "cosine_min": finite(self.cosine_min),
            "cosine_mean": finite(self.cosine_mean),
            "max_error_rel_range": finite(self.max_error_rel_range),
            "mean_error_rel_range": finite(self.mean_error_rel_range),
            "top1_agreement": self.top1_agreement,
            "float_bytes": self.float_bytes,
            "file_bytes": self.file_bytes,
            "passed": self.passed,
            "problem": self.problem or None,
            "message": self.message,
        }


@dataclass
class _Tally:
    cosines: list[float] = field(default_factory=list)
    max_errors: list[float] = field(default_factory=list)
    mean_errors: list[float] = field(default_factory=list)
    rows: int = 0
    agree: int = 0


def _add(tally: _Tally, actual: Any, expected: Any) -> None:
    """One output at one input into the tally (float64 throughout)."""
    import numpy as np

    a = np.asarray(actual, dtype=np.float64).ravel()
    b = np.asarray(expected, dtype=np.float64).ravel()
    if a.shape != b.shape:
        tally.cosines.append(math.nan)
        tally.max_errors.append(math.nan)
        tally.mean_errors.append(math.nan)
        return
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    if norms > 0:
        cosine = float(a @ b) / norms
    else:  # a zero vector: similar only to another zero vector
        cosine = 1.0 if not a.any() and not b.any() else 0.0
    span = float(b.max() - b.min()) if b.size else 0.0
    span = span if span > 0 else max(float(np.abs(b).max(initial=0.0)), 1e-12)
    diff = np.abs(a - b)
    tally.cosines.append(cosine)
    tally.max_errors.append(float(diff.max(initial=0.0)) / span)
    tally.mean_errors.append(float(diff.mean()) / span if diff.size else 0.0)
    expected2 = np.asarray(expected)
    if expected2.ndim == 2 and expected2.shape[1] > 1:  # N x classes
        got = np.asarray(actual).reshape(expected2.shape)
        tally.rows += expected2.shape[0]
        tally.agree += int((got.argmax(axis=1) == expected2.argmax(axis=1)).sum())


def evaluate_quantized(
    built: Any, path: str | Path, *, source: str | Path = "", mode: str = "", samples: int = DEFAULT_EVAL_SAMPLES,
    min_cosine: float = DEFAULT_MIN_COSINE, min_top1: float = DEFAULT_MIN_TOP1, provider: str = "cpu",
    calibration: dict[str, Any] | None = None,
) -> QuantReport:
    """Run the quantized file at ``path`` and ``built`` (PyTorch, float32, CPU) on ``samples`` seeded
    draws of the example distribution at the example shape (seeds ``seed + EVAL_SEED_OFFSET`` on) and
    gather the figures of ``QuantReport``."""
    import numpy as np

    from attncli.onnx_export import file_opset
    from attncli.parity import OnnxRuntimeRunner, TorchRunner, _first_line, seeded_input

    check_options(mode or "dynamic", QDQ_MIN_OPSET, eval_samples=samples, min_cosine=min_cosine, min_top1=min_top1)
    shape = tuple(int(d) for d in built.input_shape)
    first_seed = int(built.request.seed) + EVAL_SEED_OFFSET
    runner = OnnxRuntimeRunner(path, provider)
    name = runner.input_names[0]
    reference = TorchRunner(built.module, [name], runner.output_names)
    report = QuantReport(
        model=built.name, file=str(path), source=str(source), mode=mode or str(_recorded_mode(path)), opset=file_opset(path),
        provider=runner.provider, input_shape=shape, samples=int(samples), first_seed=first_seed, min_cosine=float(min_cosine),
        min_top1=float(min_top1), calibration=calibration, file_bytes=Path(path).stat().st_size,
        float_bytes=Path(source).stat().st_size if source and Path(source).is_file() else 0,
    )
    tally = _Tally()
    for seed in range(first_seed, first_seed + int(samples)):
        feeds = {name: seeded_input(shape, seed)}
        expected = reference.infer(feeds)
        try:
            actual = runner.infer(feeds)
        except Exception as exc:
            report.problem = f"onnxruntime fails on the quantized file: {_first_line(exc)}"
            return report
        for output in runner.output_names:
            _add(tally, actual[output], expected[output])
    report.cosine_min = min(tally.cosines) if not any(map(math.isnan, tally.cosines)) else math.nan
    report.cosine_mean = float(np.mean(tally.cosines))
    report.max_error_rel_range = float(np.max(tally.max_errors))
    report.mean_error_rel_range = float(np.mean(tally.mean_errors))
    report.top1_agreement = tally.agree / tally.rows if tally.rows else None
    return report


def _recorded_mode(path: str | Path) -> str | None:
    from attncli.onnx_export import spec_from_file

    try:
        spec = spec_from_file(path) or {}
    except UsageError:
        return None
    return (spec.get("metadata") or {}).get(METADATA_KEY)


def prepare_calibration(
    built: Any, mode: str, *, calibration_samples: int | None = None, calibration_data: str | Path | None = None,
    dynamic_axes: dict[int, str] | None = None,
) -> tuple[list[Any], dict[str, Any] | None]:
    """The calibration inputs of a static quantization of ``built`` and where they came from (a
    folder's ``.npy`` files, checked against the example shape, or seeded draws); none for dynamic.
    Called before the export, so that a bad folder fails before any file is written."""
    if mode != "static":
        return [], None
    if calibration_data is not None:
        inputs = load_calibration(calibration_data, built.input_shape, dynamic_axes or {})
        return inputs, {"source": "folder", "folder": str(calibration_data), "samples": len(inputs), "first_seed": None}
    count = DEFAULT_CALIBRATION_SAMPLES if calibration_samples is None else int(calibration_samples)
    start = int(built.request.seed) + CALIBRATION_SEED_OFFSET
    return seeded_calibration(built.input_shape, built.request.seed, count), {
        "source": "seeded", "folder": None, "samples": count, "first_seed": start}


def quantize_and_evaluate(
    built: Any, source: str | Path, mode: str, *, target: str | Path | None = None, input_name: str = "input",
    calibration: tuple[list[Any], dict[str, Any] | None] = ([], None), eval_samples: int | None = None,
    min_cosine: float | None = None, min_top1: float | None = None, provider: str = "cpu", force: bool = False,
) -> QuantReport:
    """Quantize the verified float file ``source`` of ``built`` (to ``target``, default
    ``quantized_path(source)``; ``calibration`` as ``prepare_calibration`` gives it) and judge it:
    the whole of ``export --quantize`` after the export."""
    target = quantized_path(source) if target is None else Path(target)
    inputs, info = calibration
    record = {"attncli.quantization.calibration": f"{info['source']}:{info['samples']}"} if info else {}
    written = quantize_onnx(source, target, mode, input_name=input_name, calibration=inputs, force=force, record=record)
    return evaluate_quantized(
        built, written, source=source, mode=mode, provider=provider, calibration=info,
        samples=DEFAULT_EVAL_SAMPLES if eval_samples is None else int(eval_samples),
        min_cosine=DEFAULT_MIN_COSINE if min_cosine is None else float(min_cosine),
        min_top1=DEFAULT_MIN_TOP1 if min_top1 is None else float(min_top1),
    )
