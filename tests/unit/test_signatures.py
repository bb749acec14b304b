"""A function of the package with more than four parameters takes the rest by keyword, so
that a call names what it passes; llm-toll 0.13's store methods keep their positional
signatures (``log_usage(project, model, input_tokens, output_tokens, cost)``)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "llm_toll"
MOST_POSITIONAL = 4
V013_SIGNATURES = {"log_usage", "log_usage_if_within_budget"}


def positional_parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = [arg.arg for arg in (*function.args.posonlyargs, *function.args.args)]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def test_functions_take_parameters_past_the_fourth_by_keyword() -> None:
    too_many = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name not in V013_SIGNATURES
        and len(positional_parameters(node)) > MOST_POSITIONAL
    ]
    assert too_many == []
