"""Option types shared by every command, declared once."""

from enum import Enum
from typing import List, Optional

import typer
from typing_extensions import Annotated

from attncli.modelspec import ModelRequest


class Format(str, Enum):
    table = "table"
    json = "json"


class Kind(str, Enum):
    block = "block"
    backbone = "backbone"


ModelArg = Annotated[
    str,
    typer.Argument(help="A registry name (see `attncli list`), path/to/file.py:Name or package.module:Name.", show_default=False),
]
ParamOpt = Annotated[
    Optional[List[str]],
    typer.Option(
        "--param", "-p", metavar="KEY=VALUE",
        help="Constructor argument, repeatable: -p channels=64 -p k_size=3,5,5,7. "
        "Values parse as int, float, bool, none or comma tuples; attn.KEY goes to the --attn block.",
        show_default=False,
    ),
]
InputShapeOpt = Annotated[
    Optional[str],
    typer.Option("--input-shape", "-s", metavar="N,C,H,W", help="Example input shape, e.g. 1,64,56,56 (default: the model's).", show_default=False),
]
AttnOpt = Annotated[
    Optional[str],
    typer.Option("--attn", metavar="BLOCK", help="Put this attention block into a resnet*/mobilenetv2 backbone.", show_default=False),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for the weights and the example input.")]
WeightsOpt = Annotated[
    Optional[str],
    typer.Option("--weights", metavar="FILE.pt", help="Load a saved state_dict (torch.load weights_only=True).", show_default=False),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table for people, json for programs (stdout).")]


def model_request(
    model: str,
    param: Optional[List[str]],
    input_shape: Optional[str],
    attn: Optional[str],
    seed: int,
    weights: Optional[str],
) -> ModelRequest:
    return ModelRequest.make(model, param, input_shape, attn, seed, weights)
