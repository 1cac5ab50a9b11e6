"""What an ONNX file holds, read without running it: `attncli inspect FILE.onnx` (Polygraphy's
``inspect model``, onnxslim's summary table).

The file is parsed without its external data (``load_external_data=False``): an external tensor's
size comes from its ``length`` entry (or its dims times its element size), so a file whose weights
live elsewhere is summarised without reading them, and a missing weights file is reported, not fatal.

Node counts: ``node_count`` is the nodes of the main graph, ``subgraph_node_count`` those inside
the bodies of control-flow nodes (the graph attributes of If, Loop, Scan, at any depth), and the
operator histogram counts every node at every depth, so its counts add up to the two together.
Nodes inside model-local functions (``model.functions``) are counted in neither: a call of a local
function is one node, named ``domain:Function`` in the histogram, as in the graph.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attncli.errors import UsageError

DEFAULT_DOMAIN = "ai.onnx"

# TensorProto element types whose names in words differ from the enum's lower-cased name.
_TYPE_WORDS = {"FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "BFLOAT16": "bfloat16"}

# Bytes per element of the fixed-width TensorProto types (the 4-bit ones pack two to a byte).
_ELEMENT_BYTES = {
    "FLOAT": 4, "DOUBLE": 8, "FLOAT16": 2, "BFLOAT16": 2, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2,
    "INT32": 4, "UINT32": 4, "INT64": 8, "UINT64": 8, "BOOL": 1, "COMPLEX64": 8, "COMPLEX128": 16,
    "FLOAT8E4M3FN": 1, "FLOAT8E4M3FNUZ": 1, "FLOAT8E5M2": 1, "FLOAT8E5M2FNUZ": 1, "FLOAT8E8M0": 1,
    "INT4": 0.5, "UINT4": 0.5, "FLOAT4E2M1": 0.5,
}


def element_type_name(elem_type: int) -> str:
    """An ONNX element type in words: 1 -> ``float32``, 10 -> ``float16``, 16 -> ``bfloat16``,
    7 -> ``int64``; a number onnx does not know -> ``element type N``."""
    from onnx import TensorProto

    try:
        name = TensorProto.DataType.Name(int(elem_type))
    except ValueError:
        return f"element type {elem_type}"
    if name == "UNDEFINED":
        return "undefined"
    return _TYPE_WORDS.get(name, name.lower())


def element_bytes(elem_type: int) -> float | None:
    """Bytes per element of a fixed-width element type (0.5 for the 4-bit ones); None for strings."""
    from onnx import TensorProto

    try:
        return _ELEMENT_BYTES.get(TensorProto.DataType.Name(int(elem_type)))
    except ValueError:
        return None


def operator_name(node: Any) -> str:
    """``Conv`` for the default domain, ``com.microsoft:FusedConv`` for any other."""
    return node.op_type if node.domain in ("", DEFAULT_DOMAIN) else f"{node.domain}:{node.op_type}"


def count_operators(graph: Any) -> tuple[int, int, list[tuple[str, int]]]:
    """(nodes of ``graph``, nodes inside its subgraphs at any depth, the operator histogram of both)
    with the histogram sorted by count, most first, then by name."""
    counts: Counter[str] = Counter()
    inner = 0
    pending = [(graph, 0)]
    while pending:
        current, depth = pending.pop()
        for node in current.node:
            counts[operator_name(node)] += 1
            inner += depth > 0
            for attribute in node.attribute:  # If's then/else branches, Loop's and Scan's bodies
                if attribute.HasField("g"):
                    pending.append((attribute.g, depth + 1))
                pending.extend((g, depth + 1) for g in attribute.graphs)
    histogram = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return len(graph.node), inner, histogram


@dataclass
class TensorSummary:
    """A graph input or output: its element type in words and its shape, a dynamic axis by name."""

    name: str
    elem_type: str
    shape: list[int | str] | None  # an int for a fixed size, the axis name ("?" when unnamed); None: rank unknown

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "elem_type": self.elem_type, "shape": self.shape}


@dataclass
class ExternalFile:
    """A file that external initializers point to: how many, the bytes they take, and whether it is there."""

    location: str
    tensors: int
    bytes: int
    exists: bool

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "tensors": self.tensors, "bytes": self.bytes, "exists": self.exists}


@dataclass
class OnnxSummary:
    """`attncli inspect`'s report on one ONNX file."""

    file: str
    file_bytes: int
    ir_version: int
    producer_name: str
    producer_version: str
    opset_imports: dict[str, int]  # domain ("ai.onnx" for the default one) -> version
    inputs: list[TensorSummary]
    outputs: list[TensorSummary]
    node_count: int  # the main graph's
    subgraph_node_count: int  # inside If/Loop/Scan bodies, at any depth
    operators: list[tuple[str, int]]  # every node at every depth, most frequent first
    initializer_count: int
    initializer_bytes: int  # inside the file and external together
    external_files: list[ExternalFile] = field(default_factory=list)
    local_functions: int = 0
    metadata: dict[str, str] = field(default_factory=dict)  # metadata_props as written
    attncli_spec: dict[str, Any] | None = None  # the attncli.request an attncli export recorded
    checker_problem: str = ""  # onnx.checker's first line when it rejects the file

    @property
    def external_data(self) -> bool:
        return bool(self.external_files)

    @property
    def external_bytes(self) -> int:
        return sum(f.bytes for f in self.external_files)

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Each input with a dynamic axis -> {axis: its name}."""
        found = {}
        for tensor in self.inputs:
            axes = {i: d for i, d in enumerate(tensor.shape or []) if isinstance(d, str)}
            if axes:
                found[tensor.name] = axes
        return found

    def top_operators(self, n: int = 5) -> list[tuple[str, int]]:
        return self.operators[:n]

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "file_bytes": self.file_bytes,
            "ir_version": self.ir_version,
            "producer": {"name": self.producer_name, "version": self.producer_version},
            "opset_imports": dict(self.opset_imports),
            "inputs": [t.as_dict() for t in self.inputs],
            "outputs": [t.as_dict() for t in self.outputs],
            "dynamic_axes": {name: {str(k): v for k, v in axes.items()} for name, axes in self.dynamic_axes.items()},
            "node_count": self.node_count,
            "subgraph_node_count": self.subgraph_node_count,
            "operators": [{"op": op, "count": n} for op, n in self.operators],
            "initializers": {"count": self.initializer_count, "bytes": self.initializer_bytes, "external_bytes": self.external_bytes},
            "external_data": self.external_data,
            "external_files": [f.as_dict() for f in self.external_files],
            "local_functions": self.local_functions,
            "metadata": dict(self.metadata),
            "attncli_spec": self.attncli_spec,
            "checker_problem": self.checker_problem or None,
        }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:400]


def load_graph_only(path: str | Path) -> Any:
    """The ModelProto of ``path`` without its external data; a missing file, or one that is not an
    ONNX model, is a usage error."""
    import onnx

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no such file: {path}." if not file.exists() else f"{path} is not a file.")
    if file.stat().st_size == 0:
        raise UsageError(f"{path} is not a valid ONNX model: it is empty.")
    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:
        raise UsageError(f"{path} is not a valid ONNX model: {_first_line(exc)}") from exc
    # protobuf parses many byte strings as some message: a model without a version or a graph is not one
    if model.ir_version <= 0 or not (model.graph.node or model.graph.output):
        raise UsageError(f"{path} is not a valid ONNX model: it holds no graph.")
    return model


def value_summary(value: Any) -> TensorSummary:
    """A graph input or output (a ValueInfoProto) in words."""
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorSummary(value.name, kind or "undefined", None)
    tensor = value.type.tensor_type
    shape: list[int | str] | None = None
    if tensor.HasField("shape"):
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
    return TensorSummary(value.name, element_type_name(tensor.elem_type), shape)


def initializer_bytes(tensor: Any) -> int:
    """The bytes of one initializer's values: its raw data, its external ``length``, or its dims
    times its element size (typed fields such as ``float_data`` hold wider numbers than the type)."""
    import math

    from onnx import TensorProto

    if tensor.data_location == TensorProto.EXTERNAL:
        entries = {e.key: e.value for e in tensor.external_data}
        if entries.get("length", "").isdigit():
            return int(entries["length"])
    elif tensor.HasField("raw_data"):
        return len(tensor.raw_data)
    size = element_bytes(tensor.data_type)
    if size is None:  # strings: their own lengths
        return sum(len(s) for s in tensor.string_data)
    return math.ceil(math.prod(tensor.dims) * size)


def inspect_file(path: str | Path, *, check: bool = True) -> OnnxSummary:
    """Summarise the ONNX file at ``path`` (see the module's docstring for what is counted how).

    ``check``: also run onnx's checker on the file and keep its first line when it rejects it (a
    file onnxruntime may still load; the summary is given either way)."""
    import onnx
    from onnx import TensorProto

    file = Path(path)
    model = load_graph_only(file)
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    nodes, inner, histogram = count_operators(graph)

    external: dict[str, list[int]] = {}
    total = 0
    for tensor in graph.initializer:
        size = initializer_bytes(tensor)
        total += size
        if tensor.data_location == TensorProto.EXTERNAL:
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            entry = external.setdefault(location, [0, 0])
            entry[0] += 1
            entry[1] += size
    folder = file.resolve().parent
    external_files = [
        ExternalFile(location, n, size, (folder / location).is_file()) for location, (n, size) in sorted(external.items())
    ]

    metadata = {p.key: p.value for p in model.metadata_props}
    spec = None
    if "attncli.request" in metadata:
        try:
            spec = json.loads(metadata["attncli.request"])
        except ValueError:
            spec = None  # the raw text stays in metadata

    problem = ""
    if check:
        try:
            onnx.checker.check_model(str(file))
        except Exception as exc:
            problem = _first_line(exc)

    return OnnxSummary(
        file=str(path),
        file_bytes=os.path.getsize(file),
        ir_version=int(model.ir_version),
        producer_name=model.producer_name,
        producer_version=model.producer_version,
        opset_imports={(o.domain or DEFAULT_DOMAIN): int(o.version) for o in model.opset_import},
        inputs=[value_summary(v) for v in graph.input if v.name not in weights],
        outputs=[value_summary(v) for v in graph.output],
        node_count=nodes,
        subgraph_node_count=inner,
        operators=histogram,
        initializer_count=len(graph.initializer),
        initializer_bytes=total,
        external_files=external_files,
        local_functions=len(model.functions),
        metadata=metadata,
        attncli_spec=spec,
        checker_problem=problem,
    )
