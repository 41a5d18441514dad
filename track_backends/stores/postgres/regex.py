r"""Translate Python regular expressions (``$regex``) to PostgreSQL's ARE, where that is exact.

>>> pg_regex("^a.c$")
('^a[^\\u000a]c(?=\\u000a?$)', False)
>>> pg_regex(r"(a)\1") is None  # back-references have no exact equivalent
True
"""

from __future__ import annotations

import re
from re import _constants as _sc  # type: ignore[attr-defined]
from re import _parser as _sre  # type: ignore[attr-defined]
from typing import Any


class _Untranslatable(Exception):
    pass


_CATEGORY_CLASS = {
    _sc.CATEGORY_DIGIT: "0-9",
    _sc.CATEGORY_WORD: "a-zA-Z0-9_",
    _sc.CATEGORY_SPACE: "\\u0009-\\u000d\\u001c-\\u0020",
}
_NOT_CATEGORY = {
    _sc.CATEGORY_NOT_DIGIT: _sc.CATEGORY_DIGIT,
    _sc.CATEGORY_NOT_WORD: _sc.CATEGORY_WORD,
    _sc.CATEGORY_NOT_SPACE: _sc.CATEGORY_SPACE,
}
_MAX_PATTERN = 2000
_FLAGS = (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL), ("x", re.VERBOSE))


def _quantifier(lo: int, hi: int) -> str:
    """The ARE quantifier for ``{lo,hi}`` (``hi`` may be ``MAXREPEAT``: unbounded)."""
    unbounded = hi == _sc.MAXREPEAT
    if lo > 255 or (not unbounded and hi > 255):
        raise _Untranslatable("repeat bound over 255")
    if unbounded:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    if (lo, hi) == (0, 1):
        return "?"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


class _RegexTranslator:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.guard = bool(flags & re.IGNORECASE)

    def char(self, code: int) -> str:
        if code == 0 or 0xD800 <= code <= 0xDFFF:
            raise _Untranslatable("unstorable character")
        if code > 127:
            if self.flags & re.IGNORECASE:
                raise _Untranslatable("case folding outside ASCII")
            return chr(code)
        ch = chr(code)
        if ch.isalnum():
            return ch
        if 32 < code < 127:
            return "\\" + ch
        return f"\\u{code:04x}"

    def cls(self, items: list[Any]) -> str:
        negate = False
        out = []
        if len(items) == 1 and items[0][0] == _sc.CATEGORY and items[0][1] in _NOT_CATEGORY:
            self.guard = True
            return "[^" + _CATEGORY_CLASS[_NOT_CATEGORY[items[0][1]]] + "]"
        for op, av in items:
            if op == _sc.NEGATE:
                negate = True
            elif op == _sc.LITERAL:
                out.append(self.char(av))
            elif op == _sc.RANGE:
                out.append(self.char(av[0]) + "-" + self.char(av[1]))
            elif op == _sc.CATEGORY and av in _CATEGORY_CLASS:
                self.guard = True
                out.append(_CATEGORY_CLASS[av])
            else:
                raise _Untranslatable(f"class item {op}")
        return "[" + ("^" if negate else "") + "".join(out) + "]"

    def seq(self, items: Any) -> str:
        return "".join(self.item(op, av) for op, av in items)

    def repeat(self, op: Any, av: Any) -> str:
        lo, hi, sub = av
        if not sub or any(o in (_sc.AT, _sc.ASSERT, _sc.ASSERT_NOT) for o, _ in sub):
            raise _Untranslatable("quantified assertion")
        body = self.seq(sub)
        if not body:
            raise _Untranslatable("empty quantified group")
        return "(?:" + body + ")" + _quantifier(lo, hi) + ("?" if op == _sc.MIN_REPEAT else "")

    def anchor(self, av: Any) -> str:
        multiline = self.flags & re.MULTILINE
        if av == _sc.AT_BEGINNING:
            return "(?:^|(?<=\\u000a))" if multiline else "^"
        if av == _sc.AT_BEGINNING_STRING:
            return "^"
        if av == _sc.AT_END:
            return "(?=\\u000a|$)" if multiline else "(?=\\u000a?$)"
        if av == _sc.AT_END_STRING:
            return "$"
        if av in (_sc.AT_BOUNDARY, _sc.AT_NON_BOUNDARY):
            self.guard = True
            return "\\y" if av == _sc.AT_BOUNDARY else "\\Y"
        raise _Untranslatable(f"anchor {av}")

    def item(self, op: Any, av: Any) -> str:
        if op == _sc.LITERAL:
            return self.char(av)
        if op == _sc.NOT_LITERAL:
            return "[^" + self.char(av) + "]"
        if op == _sc.ANY:
            return "." if self.flags & re.DOTALL else "[^\\u000a]"
        if op == _sc.IN:
            return self.cls(av)
        if op in (_sc.MAX_REPEAT, _sc.MIN_REPEAT):
            return self.repeat(op, av)
        if op == _sc.SUBPATTERN:
            _, add, dele, sub = av
            if add or dele:
                raise _Untranslatable("scoped flags")
            return "(?:" + self.seq(sub) + ")"
        if op == _sc.BRANCH:
            return "(?:" + "|".join(self.seq(a) for a in av[1]) + ")"
        if op == _sc.AT:
            return self.anchor(av)
        if op in (_sc.ASSERT, _sc.ASSERT_NOT):
            direction, sub = av
            kind = ("=" if op == _sc.ASSERT else "!") if direction > 0 else ("<=" if op == _sc.ASSERT else "<!")
            return "(?" + kind + self.seq(sub) + ")"
        raise _Untranslatable(f"operator {op}")


def pg_regex(pattern: str, options: str = "") -> tuple[str, bool] | None:
    r"""Translate a Python regular expression to an equivalent PostgreSQL ARE.

    The translation goes through Python's own parser, so it means what the memory store's
    :mod:`re` means: ``.`` excludes newlines unless ``s``; ``$`` also matches before a final
    newline; ``m`` makes ``^``/``$`` match at line breaks; ``x`` is resolved by the parser.

    Args:
        pattern: The ``$regex`` pattern.
        options: Its ``$options`` (``imsx``).

    Returns:
        ``(pattern, guard)``: ``guard`` is true when the translation is exact only for ASCII
        subjects (case folding and the classes ``\\d \\w \\s \\b``, which Python extends to
        Unicode); ``None`` when the pattern uses features without an exact equivalent
        (back-references, scoped flags, possessive repeats, bounds over 255, ...).
    """
    if len(pattern) > _MAX_PATTERN:
        return None
    flags = 0
    for ch, flag in _FLAGS:
        if ch in options:
            flags |= flag
    try:
        tree = _sre.parse(pattern, flags)
    except Exception:  # noqa: BLE001 - anything Python refuses, we do not translate
        return None
    flags = tree.state.flags
    if flags & (re.LOCALE | re.ASCII):
        return None
    tr = _RegexTranslator(flags)
    try:
        body = tr.seq(tree)
    except _Untranslatable:
        return None
    prefix = "(?i)" if flags & re.IGNORECASE else ""
    return prefix + body, tr.guard
