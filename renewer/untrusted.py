"""Input nobody vouched for: JSON decoded within bounds, and values described without echoing them.

Two jobs that every reader of operator or caller input shares (the payload, the configuration
document, the environment):

* :func:`decode_json` turns text into a JSON value or one :class:`UnreadableJson` — never a
  ``RecursionError`` (deep nesting), a ``ValueError`` from ``int()`` (Python refuses to convert
  more than 4,300 digits) or a document a later ``repr``/``json.dumps`` could not walk. It also
  refuses what JSON parsers disagree on: a key twice in one object, ``NaN``/``Infinity``.
* :func:`describe` and :func:`quote` are how an error message talks about a value. A value in the
  wrong field may be a secret (an HMAC key or a PEM private key pasted into ``hmacKeySecretId``),
  and error messages end up in the 502 body and the log (``renewer.errors``), so a *value* is
  never echoed — only what is wrong with it: its JSON type, its length, that it holds a PEM block.
  Object *keys* are quoted (they are names, not values) but escaped and truncated, so a key
  holding a newline cannot forge a second problem line.

Pure, stdlib only.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_INTEGER_DIGITS",
    "UnreadableJson",
    "decode_json",
    "describe",
    "json_kind",
    "key_name",
    "quote",
    "shown_choice",
]

# The configuration document nests 6 levels at most (certificates[].targets[].listeners[]); an
# Events delivery about as much. 32 leaves room and keeps any later walk far from Python's
# recursion limit (1,000).
MAX_DEPTH = 32
# No number the renewer reads (ports, counts, days, versions) needs more than 19 digits.
MAX_INTEGER_DIGITS = 20
QUOTE_LIMIT = 40  # characters of a quoted key shown before "..."
_PLAIN = re.compile(r"[A-Za-z0-9_.-]+")
# A wrong value of an enumerated setting (OCI_AUTH, keyType, an action) is shown when it is a
# short word: that is how a typo is spotted, and 20 letters/digits hold no key (an HMAC key is
# 32+ bytes, 43+ base64 characters; a PEM block has dashes and lines).
_CHOICE = re.compile(r"[A-Za-z0-9_-]{1,20}")


class UnreadableJson(ValueError):
    """The text is not JSON the renewer accepts; the message says why, never what it held."""


def decode_json(text: str | bytes) -> Any:  # noqa: ANN401 - any JSON value
    """Decode ``text`` as one JSON value, bounded in depth and number size.

    Raises:
        UnreadableJson: not JSON (with line and column), nested deeper than :data:`MAX_DEPTH`,
            an integer longer than :data:`MAX_INTEGER_DIGITS` digits, ``NaN``/``Infinity``, or
            a key repeated in one object.

    """
    try:
        document = json.loads(
            text,
            parse_int=_integer,
            parse_constant=_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        # exc.msg is the parser's own words ("Expecting value"), never the text itself.
        msg = f"is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        raise UnreadableJson(msg) from None
    except RecursionError:
        # The C scanner gives up before our depth walk could run.
        msg = f"nests arrays and objects too deeply (at most {MAX_DEPTH} levels)"
        raise UnreadableJson(msg) from None
    except UnicodeDecodeError:
        msg = "is not UTF-8 text"
        raise UnreadableJson(msg) from None
    depth = _depth(document)
    if depth > MAX_DEPTH:
        msg = f"nests arrays and objects {depth} levels deep; at most {MAX_DEPTH} are accepted"
        raise UnreadableJson(msg)
    return document


def _integer(digits: str) -> int:
    length = len(digits.lstrip("-"))
    if length > MAX_INTEGER_DIGITS:
        msg = (
            f"holds a number with {length:,} digits; no setting takes more than"
            f" {MAX_INTEGER_DIGITS}"
        )
        raise UnreadableJson(msg)
    return int(digits)


def _constant(name: str) -> float:
    msg = f"holds {name}, which is not JSON (RFC 8259 §6)"
    raise UnreadableJson(msg)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            msg = (
                f"repeats the key {quote(key)} in one object (JSON parsers disagree on which"
                " one counts); keep one"
            )
            raise UnreadableJson(msg)
        document[key] = value
    return document


def _depth(document: object) -> int:
    """How many arrays/objects deep ``document`` nests; iterative, so any depth is measurable."""
    deepest = 0
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def json_kind(value: object) -> str:
    """What a decoded JSON value is, for error messages ("a string", "null"...)."""
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def describe(value: object) -> str:
    """What ``value`` is, without any of its content: "a string of 1,704 characters on 28 lines".

    For a string: its length, its line count when it has several, and whether it holds a PEM
    block (the likeliest pasted secret, worth saying so the operator knows what went wrong).
    Other values: their JSON type, and a list's length.
    """
    if isinstance(value, str):
        if not value:
            return "an empty string"
        text = f"a string of {len(value):,} character{'s' if len(value) != 1 else ''}"
        lines = value.count("\n") + 1
        if lines > 1:
            text += f" on {lines:,} lines"
        if "-----BEGIN " in value:
            text += " holding a PEM block, and key material never belongs in the configuration"
        return text
    if isinstance(value, list):
        return f"a list of {len(value):,} item{'s' if len(value) != 1 else ''}"
    return json_kind(value)


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` quoted for a message: ``'plain'``, else an ASCII JSON literal cut at ``limit``.

    A plain name (letters, digits, ``_.-``) is shown as ``repr`` would. Anything else is escaped
    as JSON with ``ensure_ascii``, which makes control characters (a newline that would start a
    forged problem line), bidirectional overrides and quotes visible. The *escaped* text is cut,
    so the result stays under ``limit`` + 30 characters whatever the input; a cut inside an
    escape sequence leaves harmless ASCII.
    """
    if len(text) <= limit and _PLAIN.fullmatch(text):
        return f"'{text}'"
    escaped = json.dumps(text[: limit + 1], ensure_ascii=True)[1:-1]
    if len(escaped) <= limit and len(text) <= limit:
        return f'"{escaped}"'
    return f'"{escaped[:limit]}"... ({len(text):,} characters)'


def key_name(key: str) -> str:
    """An object key for a JSON path: bare when it is a plain name (``dnsname``), else quoted."""
    if len(key) <= QUOTE_LIMIT and _PLAIN.fullmatch(key):
        return key
    return quote(key)


def shown_choice(value: object) -> str:
    """A wrong value of an enumerated setting: ``'word'`` when short and plain, else described."""
    if isinstance(value, str) and _CHOICE.fullmatch(value):
        return f"'{value}'"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # at most MAX_INTEGER_DIGITS digits when it came from decode_json
    return f"({describe(value)})"
