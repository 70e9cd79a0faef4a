"""A small, honest evaluator for the Terraform expressions this repository's module uses.

There is no ``terraform`` binary in CI, so the documents the module writes (the renewer's
configuration and the IAM statements, ``terraform/documents.tf``) are evaluated here: the HCL
is parsed by python-hcl2 (a real HCL2 grammar) and this module walks its syntax tree.

Supported, with Terraform's semantics: variables (defaults, ``-var``-style inputs, type
conversion with ``optional(type, default)`` attributes, validation blocks), locals (lazily, in
dependency order), module calls (their arguments evaluated in the caller), string templates
with ``${...}``, numbers, booleans, null, tuples, objects, ``for`` expressions over lists and
maps (with ``if``), conditionals, ``!``/``-`` and the binary operators with HCL's precedence,
attribute access, indexing, and the functions in :data:`FUNCTIONS`. Anything else (resource
attributes, splats, heredocs, directives) raises :class:`Unsupported`, so the evaluator can
never silently produce a wrong value for a construct it does not know. Values the module
derives from resources (``local.vault_id``...) are supplied by the caller as ``bound`` locals.

When a ``terraform`` binary is on PATH, tests/terraform compares this evaluator's results
with Terraform's own for every example.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import hcl2
from lark import Token, Tree

MISSING = object()


class EvalError(Exception):
    """An expression failed the way it would fail in Terraform (``can``/``try`` catch it)."""


class Unsupported(EvalError):
    """A construct this evaluator does not implement: never caught by ``can``/``try``."""


class ValidationFailed(EvalError):
    """A variable's validation block rejected its value; the message is the block's."""


# ----------------------------------------------------------------------------- tree helpers


def _kids(node: Tree) -> list[Any]:
    """Children without punctuation tokens and comments/new lines."""
    return [
        c
        for c in node.children
        if not (isinstance(c, Tree) and c.data == "new_line_or_comment")
        and not (isinstance(c, Token) and c.type in _PUNCTUATION)
    ]


_PUNCTUATION = {
    "LPAR", "RPAR", "LBRACE", "RBRACE", "LSQB", "RSQB", "COMMA", "EQ", "COLON", "DOT",
    "DBLQUOTE", "QMARK", "FOR", "IN", "IF", "INTERP_START", "NL_OR_COMMENT", "FOR_OBJECT_ARROW",
    "__ANON_0", "__ANON_1",
}  # fmt: skip


def _name(node: Any) -> str:
    """The text of an ``identifier`` node (or a bare NAME token)."""
    if isinstance(node, Tree) and node.data == "identifier":
        return str(node.children[0])
    if isinstance(node, Token):
        return str(node)
    raise Unsupported(f"expected an identifier, got {_describe(node)}")


def _describe(node: Any) -> str:
    return node.data if isinstance(node, Tree) else f"token {node.type} {node!s}"


def _unwrap(node: Any) -> Any:
    """``expr_term`` without parentheses is just its child."""
    while isinstance(node, Tree) and node.data == "expr_term":
        kids = _kids(node)
        has_parens = any(isinstance(c, Token) and c.type == "LPAR" for c in node.children)
        if len(kids) != 1 or has_parens:
            return node
        node = kids[0]
    return node


def _string_literal(text: str) -> str:
    """Decode HCL quoted-string escapes and the ``$${``/``%%{`` escapes."""
    out: list[str] = []
    i = 0
    escapes = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            if nxt == "u":
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise Unsupported(f"string escape \\{nxt}")
        if text.startswith(("$${", "%%{"), i):
            out.append(text[i + 1 : i + 3])
            i += 3
            continue
        if text.startswith("%{", i):
            raise Unsupported("template directives (%{...})")
        out.append(ch)
        i += 1
    return "".join(out)


# ----------------------------------------------------------------------------- values


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "tuple"
    return "object"


def _to_string(value: Any) -> str:
    """Terraform's automatic conversion to string (templates, string arguments)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise EvalError(f"cannot convert {_type_name(value)} to string")


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                return int(value) if re.fullmatch(r"-?\d+", value) else float(value)
            except ValueError as exc:
                raise EvalError(f"{value!r} is not a number") from exc
        raise EvalError(f"a number is required, not {_type_name(value)}")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise EvalError(f"a bool is required, not {_type_name(value)}")


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


# ----------------------------------------------------------------------------- functions


def _jsonencode(value: Any) -> str:
    # cty marshals object attributes in lexical order, compactly.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _regex(pattern: str, text: str) -> Any:
    if text is None or pattern is None:
        raise EvalError("regex: null argument")
    match = re.search(pattern, _to_string(text))
    if match is None:
        raise EvalError("regex: pattern did not match")
    if match.groupdict():
        return match.groupdict()
    if match.groups():
        return list(match.groups())
    return match.group(0)


def _formatdate(fmt: str, timestamp: str) -> str:
    if fmt != "YYYY":
        raise Unsupported(f"formatdate format {fmt!r}")
    try:
        moment = datetime.fromisoformat(_to_string(timestamp))
    except ValueError as exc:
        raise EvalError("not an RFC 3339 timestamp") from exc
    if moment.tzinfo is None:
        raise EvalError("not an RFC 3339 timestamp (no offset)")
    return f"{moment.year:04d}"


def _not_null(name: str, *args: Any) -> None:
    if any(a is None for a in args):
        raise EvalError(f"{name}: argument must not be null")


def _coalesce(*args: Any) -> Any:
    for arg in args:
        if arg is not None and arg != "":
            return arg
    raise EvalError("coalesce: no non-null, non-empty-string arguments")


def _one(values: Any) -> Any:
    if len(values) > 1:
        raise EvalError("one: must be a list, set or tuple value with either zero or one elements")
    return values[0] if values else None


def _concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for item in lists:
        if not isinstance(item, list):
            raise EvalError("concat: all arguments must be lists or tuples")
        out.extend(item)
    return out


def _distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not any(_equal(value, seen) for seen in out):
            out.append(value)
    return out


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        out.extend(_flatten(value) if isinstance(value, list) else [value])
    return out


def _contains(values: list[Any], value: Any) -> bool:
    _not_null("contains", values, value)
    return any(_equal(v, value) for v in values)


def _merge(*maps: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in maps:
        if item is not None:
            out.update(item)
    return out


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "alltrue": lambda values: all(_bool(v) for v in values),
    "coalesce": _coalesce,
    "concat": _concat,
    "contains": _contains,
    "distinct": _distinct,
    "flatten": _flatten,
    "floor": lambda n: math.floor(_number(n)),
    "formatdate": _formatdate,
    "jsonencode": _jsonencode,
    "keys": lambda m: sorted(m),
    "length": lambda v: len(v) if v is not None else _not_null("length", v),
    "lower": lambda s: _to_string(s).lower() if s is not None else _not_null("lower", s),
    "merge": _merge,
    "one": _one,
    "regex": _regex,
    "replace": lambda s, a, b: _to_string(s).replace(_to_string(a), _to_string(b)),
    "startswith": lambda s, p: (_not_null("startswith", s, p), _to_string(s).startswith(p))[1],
    "tostring": lambda v: None if v is None else _to_string(v),
    "trimsuffix": lambda s, x: _to_string(s).removesuffix(_to_string(x)),
}

_PRECEDENCE = {
    "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4,
    "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
}  # fmt: skip


# ----------------------------------------------------------------------------- the module


@dataclass
class Variable:
    """A ``variable`` block: its type and default expressions and its validation blocks."""

    name: str
    type_node: Any = None
    default_node: Any = MISSING
    validations: list[tuple[Any, Any]] = field(default_factory=list)


@dataclass
class Module:
    """The variables, locals and module calls of one directory of ``.tf`` files."""

    path: Path
    variables: dict[str, Variable] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Module:
        """Parse every ``*.tf`` file of ``path`` (not sub-directories)."""
        module = cls(path)
        for tf in sorted(path.glob("*.tf")):
            body = _kids(hcl2.parses_to_tree(tf.read_text(encoding="utf-8")))[0]
            for block in _kids(body):
                if isinstance(block, Tree) and block.data == "block":
                    module._read_block(block)
        return module

    def _read_block(self, block: Tree) -> None:  # noqa: C901 - one branch per block kind
        kids = _kids(block)
        kind = _name(kids[0])
        labels = [_label(k) for k in kids[1:-1]]
        body = kids[-1]
        if kind == "variable":
            variable = Variable(labels[0])
            for item in _kids(body):
                if item.data == "attribute":
                    key, value = _attribute(item)
                    if key == "type":
                        variable.type_node = value
                    elif key == "default":
                        variable.default_node = value
                elif item.data == "block" and _name(_kids(item)[0]) == "validation":
                    attrs = dict(_attribute(a) for a in _kids(_kids(item)[-1]))
                    variable.validations.append((attrs["condition"], attrs["error_message"]))
            self.variables[variable.name] = variable
        elif kind == "locals":
            for item in _kids(body):
                key, value = _attribute(item)
                if key in self.locals:
                    raise EvalError(f"local.{key} is defined twice")
                self.locals[key] = value
        elif kind == "module":
            self.modules[labels[0]] = dict(
                _attribute(a) for a in _kids(body) if a.data == "attribute"
            )


def _label(node: Any) -> str:
    if isinstance(node, Tree) and node.data == "string":
        return "".join(str(p.children[0]) for p in _kids(node))
    return _name(node)


def _attribute(node: Tree) -> tuple[str, Any]:
    kids = _kids(node)
    return _name(kids[0]), kids[-1]


def read_tfvars(path: Path) -> dict[str, Any]:
    """The values of a ``.tfvars`` file (literal expressions only)."""
    body = _kids(hcl2.parses_to_tree(path.read_text(encoding="utf-8")))[0]
    scope = Scope(Evaluation(Module(path.parent), {}, {}))
    return {k: scope.eval(v) for k, v in (_attribute(a) for a in _kids(body))}


class Evaluation:
    """One module instance: its inputs, its bound locals and what has been computed."""

    def __init__(self, module: Module, inputs: Mapping[str, Any], bound: Mapping[str, Any]) -> None:
        unknown = set(inputs) - set(module.variables)
        if unknown:
            raise EvalError(f"no variable named {', '.join(sorted(unknown))} in {module.path}")
        self.module = module
        self.inputs = dict(inputs)
        self.bound = dict(bound)
        self._vars: dict[str, Any] = {}
        self._locals: dict[str, Any] = {}
        self._computing: set[str] = set()

    def var(self, name: str) -> Any:
        """The value of ``var.<name>``: converted to its type, validated."""
        if name not in self._vars:
            variable = self.module.variables.get(name)
            if variable is None:
                raise EvalError(f"reference to undeclared variable var.{name}")
            if name in self.inputs:
                raw = self.inputs[name]
            elif variable.default_node is not MISSING:
                raw = Scope(self).eval(variable.default_node)
            else:
                raise EvalError(f"variable {name!r} is required and has no value")
            value = convert(raw, variable.type_node, f"var.{name}")
            self._vars[name] = value
            for condition, message in variable.validations:
                scope = Scope(self)
                if not _bool(scope.eval(condition)):
                    raise ValidationFailed(f"var.{name}: {_to_string(scope.eval(message))}")
        return self._vars[name]

    def local(self, name: str) -> Any:
        """The value of ``local.<name>`` (bound values win; cycles are errors)."""
        if name in self.bound:
            return self.bound[name]
        if name not in self._locals:
            node = self.module.locals.get(name)
            if node is None:
                raise EvalError(f"reference to undeclared local value local.{name}")
            if name in self._computing:
                raise EvalError(f"local.{name} depends on itself")
            self._computing.add(name)
            try:
                self._locals[name] = Scope(self).eval(node)
            finally:
                self._computing.discard(name)
        return self._locals[name]

    def validate_all(self) -> None:
        """Evaluate every variable, running its validations."""
        for name in self.module.variables:
            self.var(name)

    def module_inputs(self, call: str) -> dict[str, Any]:
        """The arguments of ``module "<call>"`` evaluated here (``source`` left out)."""
        scope = Scope(self)
        return {
            key: scope.eval(node)
            for key, node in self.module.modules[call].items()
            if key not in ("source", "version", "providers", "depends_on", "count", "for_each")
        }


class Scope:
    """Expression evaluation with the iterator names of enclosing ``for`` expressions."""

    def __init__(self, evaluation: Evaluation, names: Mapping[str, Any] | None = None) -> None:
        self.evaluation = evaluation
        self.names = dict(names or {})

    def child(self, **names: Any) -> Scope:
        """A scope with more iterator names."""
        return Scope(self.evaluation, {**self.names, **names})

    def eval(self, node: Any) -> Any:  # noqa: C901, PLR0911, PLR0912 - one dispatch on node kind
        """The value of ``node``."""
        node = _unwrap(node)
        if isinstance(node, Token):
            raise Unsupported(f"bare token {node.type}")
        kind = node.data
        kids = _kids(node)
        if kind == "expr_term":  # parenthesized
            return self.eval(kids[0])
        if kind == "literal_value":
            return {"true": True, "false": False, "null": None}[str(kids[0])]
        if kind == "int_lit":
            return int(str(kids[0]))
        if kind == "float_lit":
            return float(str(kids[0]))
        if kind == "string":
            return self._template(kids)
        if kind == "tuple":
            return [self.eval(k) for k in kids]
        if kind == "object":
            return self._object(kids)
        if kind == "identifier":
            return self._name(_name(node))
        if kind == "get_attr_expr_term":
            return self._get_attr(kids)
        if kind == "index_expr_term":
            return self._index(self.eval(kids[0]), self.eval(_kids(kids[1])[0]))
        if kind == "function_call":
            return self._call(kids)
        if kind == "conditional":
            chosen = kids[1] if _bool(self.eval(kids[0])) else kids[2]
            return self.eval(chosen)
        if kind == "unary_op":
            operator, operand = str(node.children[0]), self.eval(kids[-1])
            return (not _bool(operand)) if operator == "!" else -_number(operand)
        if kind == "binary_op":
            return self._binary(node)
        if kind == "for_tuple_expr":
            return self._for(kids, want_object=False)
        if kind == "for_object_expr":
            return self._for(kids, want_object=True)
        raise Unsupported(f"{kind} expressions")

    # -------------------------------------------------------------- pieces

    def _template(self, parts: list[Any]) -> str:
        out = []
        for part in parts:
            inner = part.children[0]
            if isinstance(inner, Tree) and inner.data == "interpolation":
                value = self.eval(_kids(inner)[0])
                if value is None:
                    raise EvalError("invalid template interpolation value: null")
                out.append(_to_string(value))
            else:
                out.append(_string_literal(str(inner)))
        return "".join(out)

    def _object(self, elements: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for element in elements:
            key_node, value_node = _kids(element)[0], _kids(element)[-1]
            key_expr = _unwrap(_kids(key_node)[0])
            if isinstance(key_expr, Tree) and key_expr.data == "identifier":
                key = _name(key_expr)  # a bare name is a literal key, as in Terraform
            else:
                key = _to_string(self.eval(key_expr))
            out[key] = self.eval(value_node)
        return out

    def _name(self, name: str) -> Any:
        if name in self.names:
            return self.names[name]
        raise Unsupported(f"reference to {name!r} (only var.*, local.* and for iterators)")

    def _get_attr(self, kids: list[Any]) -> Any:
        base, attr = _unwrap(kids[0]), _name(_kids(kids[1])[0])
        if isinstance(base, Tree) and base.data == "identifier":
            root = _name(base)
            if root == "var" and root not in self.names:
                return self.evaluation.var(attr)
            if root == "local" and root not in self.names:
                return self.evaluation.local(attr)
        value = self.eval(base)
        if not isinstance(value, dict):
            raise EvalError(f"cannot read attribute {attr!r} of {_type_name(value)}")
        if attr not in value:
            raise EvalError(f"object has no attribute {attr!r}")
        return value[attr]

    @staticmethod
    def _index(value: Any, key: Any) -> Any:
        if isinstance(value, list):
            index = _number(key)
            if not 0 <= index < len(value):
                raise EvalError(f"index {key} out of range")
            return value[int(index)]
        if isinstance(value, dict):
            if _to_string(key) not in value:
                raise EvalError(f"the given key {key!r} does not identify an element")
            return value[_to_string(key)]
        raise EvalError(f"cannot index {_type_name(value)}")

    def _call(self, kids: list[Any]) -> Any:
        name = _name(kids[0])
        arg_nodes = _kids(kids[1]) if len(kids) > 1 else []
        if any(isinstance(a, Token) and a.type == "ELLIPSIS" for a in arg_nodes):
            raise Unsupported("argument expansion (...)")
        if name in ("can", "try"):
            for position, arg in enumerate(arg_nodes):
                try:
                    value = self.eval(arg)
                except Unsupported:
                    raise
                except EvalError:
                    if name == "can":
                        return False
                    if position == len(arg_nodes) - 1:
                        raise
                    continue
                return True if name == "can" else value
        function = FUNCTIONS.get(name)
        if function is None:
            raise Unsupported(f"function {name}()")
        args = [self.eval(a) for a in arg_nodes]
        try:
            return function(*args)
        except (TypeError, AttributeError, ValueError, re.error) as exc:
            raise EvalError(f"{name}(): {exc}") from exc

    def _binary(self, node: Tree) -> Any:
        # python-hcl2 nests binary operators right-recursively without precedence: flatten
        # the chain and apply HCL's precedence (all operators are left-associative).
        operands: list[Any] = []
        operators: list[str] = []
        current: Any = node
        while isinstance(current, Tree) and current.data == "binary_op":
            left, term = _kids(current)[0], _kids(current)[1]
            operands.append(left)
            operator_node, right = _kids(term)[0], _kids(term)[-1]
            operators.append(str(operator_node.children[0]))
            current = right
        operands.append(current)
        values = [self.eval(o) for o in operands]
        return _apply_precedence(values, operators)

    def _for(self, kids: list[Any], *, want_object: bool) -> Any:
        intro = _kids(kids[0])
        names = [_name(n) for n in intro[:-1]]
        collection = self.eval(intro[-1])
        body = kids[1:]
        condition = body[-1] if isinstance(body[-1], Tree) and body[-1].data == "for_cond" else None
        if condition is not None:
            body = body[:-1]
        if any(isinstance(b, Token) and b.type == "ELLIPSIS" for b in body):
            raise Unsupported("grouping mode (...) in for expressions")
        if isinstance(collection, dict):
            pairs = list(collection.items())  # keys already in lexical order after convert()
            pairs.sort(key=lambda kv: kv[0])
        elif isinstance(collection, list):
            pairs = list(enumerate(collection))
        else:
            raise EvalError(f"cannot iterate over {_type_name(collection)}")
        out_list: list[Any] = []
        out_map: dict[str, Any] = {}
        for key, value in pairs:
            scope = (
                self.child(**{names[0]: value})
                if len(names) == 1
                else self.child(**{names[0]: key, names[1]: value})
            )
            if condition is not None and not _bool(scope.eval(_kids(condition)[0])):
                continue
            if want_object:
                map_key = _to_string(scope.eval(body[0]))
                if map_key in out_map:
                    raise EvalError(f"duplicate object key {map_key!r} in for expression")
                out_map[map_key] = scope.eval(body[-1])
            else:
                out_list.append(scope.eval(body[0]))
        return out_map if want_object else out_list


def _apply_precedence(values: list[Any], operators: list[str]) -> Any:
    output: list[Any] = [values[0]]
    pending: list[str] = []
    for operator, value in zip(operators, values[1:], strict=True):
        while pending and _PRECEDENCE[pending[-1]] >= _PRECEDENCE[operator]:
            right, left = output.pop(), output.pop()
            output.append(_operate(pending.pop(), left, right))
        pending.append(operator)
        output.append(value)
    while pending:
        right, left = output.pop(), output.pop()
        output.append(_operate(pending.pop(), left, right))
    return output[0]


def _operate(operator: str, left: Any, right: Any) -> Any:
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    if operator == "&&":  # HCL evaluates both sides (no short circuit), as done here
        return _bool(left) and _bool(right)
    if operator == "||":
        return _bool(left) or _bool(right)
    a, b = _number(left), _number(right)
    return {
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
        "%": lambda: a % b,
    }[operator]()


# ----------------------------------------------------------------------------- types


def convert(value: Any, type_node: Any, path: str) -> Any:  # noqa: C901, PLR0911, PLR0912
    """``value`` converted to the type expression ``type_node`` as Terraform does for inputs."""
    if type_node is None:
        return value
    node = _unwrap(type_node)
    if isinstance(node, Tree) and node.data == "identifier":
        kind = _name(node)
        if value is None or kind == "any":
            return value
        if kind == "string":
            return _to_string(value)
        if kind == "number":
            return _number(value)
        if kind == "bool":
            return _bool(value)
        raise Unsupported(f"type {kind}")
    if not (isinstance(node, Tree) and node.data == "function_call"):
        raise Unsupported(f"type expression {_describe(node)}")
    kids = _kids(node)
    kind = _name(kids[0])
    args = _kids(kids[1]) if len(kids) > 1 else []
    if value is None:
        return None
    if kind in ("list", "set"):
        if not isinstance(value, list):
            raise EvalError(f"{path}: a list is required, not {_type_name(value)}")
        items = [convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
        return _distinct(items) if kind == "set" else items
    if kind == "map":
        if not isinstance(value, dict):
            raise EvalError(f"{path}: a map is required, not {_type_name(value)}")
        return {k: convert(value[k], args[0], f"{path}[{k!r}]") for k in sorted(value)}
    if kind == "object":
        if not isinstance(value, dict):
            raise EvalError(f"{path}: an object is required, not {_type_name(value)}")
        attributes = _object_type(args[0])
        extra = set(value) - set(attributes)
        if extra:
            # Terraform drops undeclared attributes of an object-typed input silently; we
            # refuse them so a misspelt optional attribute cannot vanish in a test.
            raise EvalError(f"{path}: unexpected attribute(s) {', '.join(sorted(extra))}")
        out = {}
        for attr, (attr_type, optional, default_node) in attributes.items():
            if attr in value:
                out[attr] = convert(value[attr], attr_type, f"{path}.{attr}")
            elif optional:
                default = (
                    None
                    if default_node is None
                    else Scope(Evaluation(Module(Path()), {}, {})).eval(default_node)
                )
                out[attr] = convert(default, attr_type, f"{path}.{attr}")
            else:
                raise EvalError(f"{path}: attribute {attr!r} is required")
        return out
    raise Unsupported(f"type {kind}(...)")


def _object_type(node: Any) -> dict[str, tuple[Any, bool, Any]]:
    """``{ name = type | optional(type[, default]) }`` -> name: (type, optional, default)."""
    node = _unwrap(node)
    out: dict[str, tuple[Any, bool, Any]] = {}
    for element in _kids(node):
        key = _name(_unwrap(_kids(_kids(element)[0])[0]))
        type_node = _unwrap(_kids(element)[-1])
        if (
            isinstance(type_node, Tree)
            and type_node.data == "function_call"
            and _name(_kids(type_node)[0]) == "optional"
        ):
            args = _kids(_kids(type_node)[1])
            out[key] = (args[0], True, args[1] if len(args) > 1 else None)
        else:
            out[key] = (type_node, False, None)
    return out
