"""Constraint expressions over architecture fields, evaluated without ``eval``.

A constraint is one Python-syntax expression such as ``compute.rows * compute.cols <= 4096`` or
``chip_area_mm2 <= 5 and memories.glb.capacity_bytes >= 65536``. It is parsed with :mod:`ast`
and walked by a small interpreter that knows numbers, text, arithmetic, comparisons, ``and``,
``or``, ``not``, ``min``/``max``/``abs`` and dotted names; anything else (calls, subscripts,
attribute access on values, lambdas, comprehensions) is refused when the spec is read.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
from collections.abc import Callable
from typing import Any

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs}
MAX_POWER = 64  # ``x ** y`` with a larger exponent is refused (it could take unbounded time)


class ExpressionError(ValueError):
    """A constraint that cannot be read or evaluated; the message says where and why."""


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


class Expression:
    """A parsed constraint: :meth:`names` lists the dotted names it reads, :meth:`__call__`
    evaluates it against a mapping of those names to values."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError(f"expected an expression as text, got {text!r}")
        self.text = text
        try:
            self.tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ExpressionError(f"cannot parse {text!r}: {exc.msg}") from None
        self._names: list[str] = []
        self._check(self.tree)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def names(self) -> list[str]:
        """Dotted names the expression reads, in order of first use."""
        return list(dict.fromkeys(self._names))

    def _check(self, node: ast.AST) -> None:
        name = dotted(node)
        if name is not None:
            if name in _FUNCTIONS:
                raise ExpressionError(f"{self.text!r}: {name} is a function; call it, e.g. {name}(a, b)")
            self._names.append(name)
            return
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float, str)):
                raise ExpressionError(f"{self.text!r}: constant {node.value!r} is not a number or text")
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left)
            self._check(node.right)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            self._check(node.operand)
            return
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
            return
        if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
            self._check(node.left)
            for c in node.comparators:
                self._check(c)
            return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS \
                and not node.keywords and node.args:
            for a in node.args:
                self._check(a)
            return
        what = ast.unparse(node) if hasattr(ast, "unparse") else type(node).__name__
        raise ExpressionError(f"{self.text!r}: {what!r} is not allowed; constraints use numbers, field "
                              "paths, + - * / // % **, comparisons, and/or/not, min/max/abs")

    def check_names(self, known: dict[str, Any]) -> None:
        """Raise ExpressionError for the first name not in ``known``, with a did-you-mean."""
        for name in self.names():
            if name not in known:
                guess = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
                hint = (f"did you mean {guess[0]!r}?" if guess
                        else "name an architecture field by its dotted path")
                raise ExpressionError(f"{self.text!r}: unknown name {name!r}; {hint}")

    def __call__(self, values: dict[str, Any]) -> Any:
        try:
            return _eval(self.tree, values)
        except ExpressionError:
            raise
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise ExpressionError(f"{self.text!r}: {exc.__class__.__name__}: {exc}") from None


def _eval(node: ast.AST, values: dict[str, Any]) -> Any:
    name = dotted(node)
    if name is not None:
        return values[name]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > MAX_POWER:
            raise ExpressionError(f"exponent {right} is over {MAX_POWER}")
        out = _BINARY[type(node.op)](left, right)
        if isinstance(out, float) and not math.isfinite(out):
            raise ExpressionError(f"{ast.unparse(node)} is not finite")
        return out
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, values)
        return not v if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, values) for v in node.values)
        return any(_eval(v, values) for v in node.values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, values)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](*(_eval(a, values) for a in node.args))
    raise ExpressionError(f"cannot evaluate {ast.unparse(node)!r}")  # refused by _check already
