"""A hash of the code of some modules, for caches and recipes that must go stale when the code that
made them changes (``adsim train-generator --if-current``, the generator's warmed creatives on disk).
Comments, docstrings and layout do not change it."""

from __future__ import annotations

import ast
import hashlib
import importlib
from collections.abc import Sequence
from pathlib import Path


def code_text(source: str) -> str:
    """The syntax tree of Python ``source`` without its docstrings and other bare strings, as text:
    comments, docstrings, layout and line numbers do not change it."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [b for b in body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant)
                                            and isinstance(b.value.value, str))]
            node.body = kept or [ast.Pass()]
    return ast.dump(tree)


def code_fingerprint(modules: Sequence[str]) -> str:
    """``"code-"`` and 16 hex digits: a hash of the code (:func:`code_text`) of the importable
    ``modules``, in the order given."""
    h = hashlib.sha256()
    for name in modules:
        source = Path(importlib.import_module(name).__file__).read_text(encoding="utf-8")
        h.update(name.encode() + b"\0" + code_text(source).encode())
    return "code-" + h.hexdigest()[:16]


__all__ = ["code_fingerprint", "code_text"]
