"""Write docs/flop-rules.md from the rule table that counts FLOPs, ``attncli.counting.OPERATOR_RULES``.

    .venv/bin/python docs/gen_flop_rules.py           # rewrite docs/flop-rules.md
    .venv/bin/python docs/gen_flop_rules.py --check   # exit 1 if the file differs from the table

tests/test_counting.py runs the same comparison, so the page cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent / "flop-rules.md"
GENERATOR = "docs/gen_flop_rules.py"
PREFIX = "aten::"


def rule_groups(rules: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(rule, operator names) in the table's order, each in-place form written next to its operator."""
    groups: dict[str, list[str]] = {}
    for op, rule in rules.items():
        groups.setdefault(rule, []).append(op[len(PREFIX):] if op.startswith(PREFIX) else op)
    rows = []
    for rule, names in groups.items():
        present = set(names)
        shown = []
        for name in names:
            if name.endswith("_") and name[:-1] in present:
                continue  # relu_ is written with relu
            shown.append(f"`{name}`/`{name}_`" if f"{name}_" in present else f"`{name}`")
        rows.append((rule, shown))
    return rows


def render() -> str:
    from attncli.counting import OPERATOR_RULES

    groups = rule_groups(OPERATOR_RULES)
    lines = [
        "# FLOP rules",
        "",
        f"<!-- Generated from attncli.counting.OPERATOR_RULES by {GENERATOR}; do not edit by hand. -->",
        "",
        "How `attncli profile` (and `attncli.counting.count_costs`) counts each PyTorch operator of the",
        "traced forward pass. Every name is an `aten::` operator; `name_` is its in-place form, counted",
        "the same way. MACs come from the contraction operators only; FLOPs are 2 per MAC plus the rule of",
        "every other operator (see [conventions.md](conventions.md)).",
        "",
        f"{len(OPERATOR_RULES)} operator names under {len(groups)} rules:",
        "",
        "| rule | operators |",
        "|---|---|",
    ]
    for rule, names in groups:
        lines.append(f"| {rule.replace('|', chr(92) + '|')} | {', '.join(names)} |")
    lines += [
        "",
        "An elementwise operator or reduction applied to a 0-d integer tensor is shape arithmetic that",
        "the tracer records (`n = H * W`) and costs nothing. An operator with no row here is not counted",
        "as zero: it is listed in `uncounted_ops` (so is one whose shapes the trace left incomplete, as",
        "`aten::NAME (shape unknown)`), and the MACs and FLOPs are then lower bounds. A custom",
        "`torch.autograd.Function` is reported as `prim::PythonOp.ClassName`. Adding an operator to attncli",
        "is one entry in the table in `attncli/counting.py`; then rerun this generator. Counting an operator",
        "in your own code, without changing attncli: `attncli.counting.register_rule`, described in",
        "[counting-rules.md](counting-rules.md).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.is_file() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run {GENERATOR}", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's attncli, installed or not
    raise SystemExit(main(sys.argv[1:]))
