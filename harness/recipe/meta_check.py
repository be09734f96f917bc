"""Checking what a recipe dir's Python defines: each recipe_meta.py value against its
key's type (lists become tuples, dicts read-only; a wrong one is a ``MetaError`` naming the
file and the key, with what was expected), and each hook's signature.
"""

from __future__ import annotations

import difflib
import inspect
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from harness.errors import MetaError
from harness.recipe.meta_keys import Key, type_name

__all__ = ["check_hook_signature", "defined_at", "validate"]


def validate(key: Key, value: Any, path: Path) -> Any:
    """``value`` of ``key`` in the recipe_meta.py at ``path``, checked (and frozen)."""
    if callable(value) and not isinstance(value, type):
        if key.hook_params is None:
            raise MetaError(f"{path}: {key.name} must be {type_name(key.type)}, not a function")
        check_hook_signature(value, key.hook_params, f"{key.name}")
        return value
    if key.type is None:
        if value is None:
            return None
        raise MetaError(
            f"{path}: {key.name} must be a function ({', '.join(key.hook_params or ())}),"
            f" got {type(value).__name__}"
        )
    try:
        return _coerce(value, key.type)
    except _Mismatch as exc:
        raise MetaError(f"{path}: {key.name}{exc}") from None


class _Mismatch(Exception):
    """Why a value does not match an annotation; the text continues ``KEY``."""


def _coerce(value: Any, annotation: Any, where: str = "") -> Any:
    """Return ``value`` checked against ``annotation`` (lists become tuples, dicts frozen)."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return _coerce(value, option, where)
            except _Mismatch:
                continue
        raise _Mismatch(f"{where} must be {type_name(annotation)}, got {_describe(value)}")
    if origin is Literal:
        if value in args:
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _Mismatch(f"{where}: {value!r} is not one of {', '.join(map(str, args))}{hint}")
    if origin is tuple:
        item_type = args[0]
        if isinstance(value, str) and (item_type is str or get_origin(item_type) is Literal):
            value = (value,)
        if not isinstance(value, (tuple, list)):
            raise _Mismatch(f"{where} must be {type_name(annotation)}, got {_describe(value)}")
        return tuple(_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch(f"{where} must be {type_name(annotation)}, got {_describe(value)}")
        key_type, value_type = args
        return types.MappingProxyType(
            {
                _coerce(k, key_type, f"{where} key"): _coerce(v, value_type, f"{where}[{k!r}]")
                for k, v in value.items()
            }
        )
    if annotation is type(None):
        if value is None:
            return None
        raise _Mismatch(f"{where} must be None, got {_describe(value)}")
    # Plain classes; bool is an int to Python but never a timeout or a status to us.
    if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
        return value
    raise _Mismatch(f"{where} must be {type_name(annotation)}, got {_describe(value)}")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def defined_at(fn: Callable[..., Any]) -> str | None:
    """``<file>:<line>`` where a hook (a Python function) is defined, if it is one."""
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else None


def check_hook_signature(fn: Callable[..., Any], expected: tuple[str, ...], name: str) -> None:
    """Raise ``MetaError`` unless ``fn`` takes exactly the positional parameters ``expected``.

    Used for recipe_meta.py hooks and ops.py functions alike; the message names the file
    and line where ``fn`` is defined.
    """
    where = defined_at(fn) or repr(fn)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise MetaError(f"{where}: {name}: cannot read its signature: {exc}") from exc
    params = list(signature.parameters.values())
    positional = tuple(p.name for p in params if p.kind in _POSITIONAL)
    required_kwonly = [
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    if positional != expected or required_kwonly or varargs:
        raise MetaError(f"{where}: {name} must take ({', '.join(expected)}), but takes {signature}")
