from functools import partial

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import Format, FormatOpt, OutputOpt


@command(
    "providers",
    examples=[
        ("attncli providers", "the execution providers this onnxruntime has, and where the others come from"),
        ("attncli providers -f json", "the same as JSON, for a script"),
    ],
)
def providers(format: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """List onnxruntime's execution providers: the installed ones (in onnxruntime's order of preference), with the short name --provider takes, then the known ones that are not installed and the package that has each (onnxruntime-gpu for CUDA and TensorRT, onnxruntime-openvino, onnxruntime-directml, the macOS wheels for CoreML).

    Exit 0.
    """
    from attncli import api

    render.check_target(output)
    listed = api.providers()
    data = {"providers": [p.as_dict() for p in listed], "installed": [p.name for p in listed if p.installed]}
    render.emit(format.value, data, partial(render.providers_report, listed), output)
