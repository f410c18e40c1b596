"""The filter language: which runs of the table an expression keeps.

One grammar and one evaluator for every place that filters runs: the read API's
``Database.table(where=...)``, ``runtable table/export --where``, ``GET
/api/table?where=`` and the web GUI (which sends its filters here, see
``docs/adr/009-one-filter-language.md``). The user's guide is ``docs/filters.md``::

    xgm_flux > 1.5 and sample = "YAG"
    "XGM/Photon flux" in 1..2 or run in [3, 10..20]
    not ratio has error and tag:detector has value
    comment contains "bad beam"

:func:`parse` turns the text into a tree (:class:`Test`, :class:`Not`, :class:`And`,
:class:`Or`) that :func:`rows_where` evaluates on a :class:`~runtable.store.table.
TableColumns` with numpy, giving one boolean per row. Names are resolved then (by
name, then by title), so that an unknown column gets a message naming the close ones.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from .table import (
    KIND_COMPLEX,
    KIND_ERROR,
    KIND_MISSING,
    KIND_NONE,
    KIND_VALUE,
    TableColumns,
    shown,
)

__all__ = ["And", "Not", "Or", "Test", "WhereError", "column_filters", "conjuncts", "describe",
           "parse", "rows_where"]

#: Columns every table has, besides its variables (``timestamp``: the run's start).
FIXED_FIELDS = ("run", "proposal", "timestamp", "comment")
_KEYWORDS = {"and", "or", "not", "in", "is", "has", "missing", "error", "value",
             "contains", "true", "false"}
_OPS = ("==", "!=", "<=", ">=", "=", "<", ">", "~")
#: The longest expression read (a list of a few thousand runs fits).
MAX_LENGTH = 100_000
#: How deep parentheses and `not`s may nest (what is read and evaluated recursively).
MAX_DEPTH = 100


class WhereError(ValueError):
    """An expression that cannot be read, or names a column the table does not have.
    The message says where and why, for a person to fix what they typed."""


@dataclass(frozen=True)
class Field:
    """What a test looks at: a column by name or title, or every column of a tag."""

    name: str
    tag: bool = False

    def text(self) -> str:
        if self.tag:
            return f"tag:{_quote_name(self.name)}"
        return _quote_name(self.name)


@dataclass(frozen=True)
class Range:
    """``low..high``, both ends included; an end left out is open."""

    low: float | str | None
    high: float | str | None

    def text(self) -> str:
        return f"{_literal(self.low) if self.low is not None else ''}.." \
               f"{_literal(self.high) if self.high is not None else ''}"


Literal = float | int | str | bool


@dataclass(frozen=True)
class Test:
    """One test of a field: ``op`` is a comparison (``= != < <= > >=``),
    ``contains``, ``in`` (``value``: a tuple of literals and ranges), ``missing``,
    ``error`` or ``value`` (has a value)."""

    field: Field
    op: str
    value: Any = None

    def text(self) -> str:
        f = self.field.text()
        if self.op == "missing":
            return f"{f} is missing"
        if self.op in ("error", "value"):
            return f"{f} has {self.op}"
        if self.op == "in":
            items = self.value
            if len(items) == 1 and isinstance(items[0], Range):
                return f"{f} in {items[0].text()}"
            return f"{f} in [" + ", ".join(
                i.text() if isinstance(i, Range) else _literal(i) for i in items) + "]"
        return f"{f} {self.op} {_literal(self.value)}"


@dataclass(frozen=True)
class Not:
    part: Node

    def text(self) -> str:
        part = self.part
        if isinstance(part, Test) and part.op == "missing":
            return f"{part.field.text()} is not missing"
        if isinstance(part, Test) and part.op in ("error", "value"):
            return f"{part.field.text()} has no {part.op}"
        return f"not {_grouped(part)}"


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]

    def text(self) -> str:
        return " and ".join(_grouped(p) if isinstance(p, Or) else p.text() for p in self.parts)


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]

    def text(self) -> str:
        return " or ".join(p.text() for p in self.parts)


Node = Test | Not | And | Or


def _grouped(node: Node) -> str:
    return f"({node.text()})" if isinstance(node, (And, Or)) else node.text()


def _quote_name(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][\w.]*", name) and name.lower() not in _KEYWORDS:
        return name
    return _string(name)


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def describe(node: Node | None) -> str:
    """The expression in canonical form (what the GUI's chips show)."""
    return "" if node is None else node.text()


# -- parsing --------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _grammar() -> Any:
    # pyparsing (a dependency of matplotlib already) reads the grammar; see
    # docs/filters.md for it in words.
    import pyparsing as pp

    pp.ParserElement.enable_packrat()
    kw = {k: pp.CaselessKeyword(k) for k in _KEYWORDS}
    lpar, rpar, lbr, rbr = map(pp.Suppress, "()[]")
    dots = pp.Literal("..")
    number = pp.Regex(r"[-+]?(?:(?:inf|nan)\b|(?:\d+(?:\.(?!\.)\d*)?|\.\d+)(?:[eE][-+]?\d+)?)",
                      flags=re.IGNORECASE)
    number.set_parse_action(lambda t: _number(t[0]))
    string = pp.QuotedString('"', esc_char="\\") | pp.QuotedString("'", esc_char="\\")
    string.set_parse_action(lambda t: _Str(t[0]))
    word = ~pp.MatchFirst(list(kw.values())) + pp.Regex(r"[A-Za-z_][\w.\-/]*")
    boolean = kw["true"].copy().set_parse_action(lambda: True) | \
        kw["false"].copy().set_parse_action(lambda: False)
    literal = number | string | boolean | word.copy().set_parse_action(lambda t: _Str(t[0]))
    bound = number | string
    range_ = (pp.Opt(bound, default=None) + dots.suppress() + pp.Opt(bound, default=None))
    range_.set_parse_action(lambda t: Range(_plain(t[0]), _plain(t[1])))
    item = range_ | literal
    items = (lbr + pp.Opt(pp.DelimitedList(item)) + rbr) | range_
    items.set_parse_action(lambda t: [tuple(_plain(x) for x in t)])

    name = (pp.Regex(r"[A-Za-z_][\w.]*") | string).set_parse_action(lambda t: str(t[0]))
    tag = (pp.CaselessLiteral("tag:").suppress() + name).set_parse_action(
        lambda t: Field(t[0], tag=True))
    plain_field = (~pp.MatchFirst(list(kw.values())) + name).set_parse_action(
        lambda t: Field(t[0]))
    field = tag | plain_field

    op = pp.one_of(list(_OPS)) | kw["contains"]
    # `-`: once the operator is read, what follows must fit (an error points there).
    compare = (field + op - literal).set_parse_action(
        lambda t: Test(t[0], _op(t[1]), _plain(t[2])))
    within = (field + kw["in"].suppress() - items).set_parse_action(
        lambda t: Test(t[0], "in", t[1]))
    missing = (field + kw["is"].suppress() - pp.Opt(kw["not"]) + kw["missing"].suppress()
               ).set_parse_action(lambda t: Not(Test(t[0], "missing")) if len(t) > 1
                                  else Test(t[0], "missing"))
    has = (field + kw["has"].suppress() - pp.Opt(pp.CaselessKeyword("no"))
           + (kw["error"] | kw["value"])).set_parse_action(
        lambda t: Not(Test(t[0], t[-1].lower())) if len(t) > 2 else Test(t[0], t[-1].lower()))
    test = within | missing | has | compare

    expr = pp.infix_notation(test, [
        (kw["not"], 1, pp.OpAssoc.RIGHT, lambda t: Not(t[0][1])),
        (kw["and"], 2, pp.OpAssoc.LEFT, lambda t: And(tuple(t[0][0::2]))),
        (kw["or"], 2, pp.OpAssoc.LEFT, lambda t: Or(tuple(t[0][0::2]))),
    ], lpar=lpar, rpar=rpar)
    return expr


class _Str(str):
    """A string literal (kept apart from numbers until the tree is built)."""


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, _Str) else value


def _number(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _op(text: str) -> str:
    text = text.lower()
    return {"==": "=", "~": "contains"}.get(text, text)


@lru_cache(maxsize=256)
def parse(text: str) -> Node | None:
    """The tree of expression *text*; None for an empty one (keeps every run).
    Raises :class:`WhereError` with the place of the mistake. (Trees are immutable:
    the page asks about the same few expressions again and again, as data arrives.)"""
    import pyparsing as pp

    if not text.strip():
        return None
    if len(text) > MAX_LENGTH:
        raise WhereError(f"the filter is {len(text):,} characters long; at most "
                         f"{MAX_LENGTH:,} are read")
    depth = 0
    for match in re.finditer(r"[()]|\bnot\b", text, flags=re.IGNORECASE):
        depth += -1 if match.group() == ")" else 1
        if depth > MAX_DEPTH:
            raise WhereError(f"the filter nests more than {MAX_DEPTH} parentheses or "
                             "`not`s inside each other")
    try:
        result = _grammar().parse_string(text, parse_all=True)
    except RecursionError:
        raise WhereError("the filter nests too many parts inside each other") from None
    except pp.ParseBaseException as exc:
        where = exc.loc
        while where < len(text) and text[where].isspace():
            where += 1
        excerpt = text if len(text) < 80 else text[max(0, where - 40):where + 40]
        place = (f"at character {where + 1}" if text[where:].strip()
                 else "at its end (something is missing)")
        raise WhereError(
            f"cannot read the filter {place}: {excerpt!r}"
            f"{' (near ' + repr(text[where:where + 20]) + ')' if text[where:].strip() else ''}."
            " A test is e.g. `xgm_flux > 1.5`, `sample = \"YAG\"`, `run in 10..20`, "
            "`ratio has error`, `comment is missing`; join tests with and/or/not"
        ) from None
    return result[0]


def conjuncts(node: Node | None) -> list[Node]:
    """The parts of a top-level ``and`` (the node alone otherwise; none for None)."""
    if node is None:
        return []
    return list(node.parts) if isinstance(node, And) else [node]


def column_filters(table: TableColumns, node: Node | None, timezone: str = "UTC"
                   ) -> list[dict[str, Any]]:
    """Each part of *node*'s top-level ``and``: its ``text``, and where one column
    filter of the web GUI can show it, the column's name (``field``: a variable, or
    run / timestamp / comment) and that filter's ``model`` (min, max, choices,
    presence, text, keepEmpty: ``frontend/src/filters.ts``); else both None."""
    evaluator = _Evaluator(table, timezone)
    out = []
    for part in conjuncts(node):
        field, model = _column_filter(part, evaluator)
        out.append({"text": part.text(), "field": field, "model": model})
    return out


def _column_filter(part: Node, evaluator: _Evaluator) -> tuple[str | None, dict | None]:
    keep_empty = False
    if isinstance(part, Or) and len(part.parts) == 2:
        first, second = part.parts
        if isinstance(first, Test) and isinstance(second, Test) and \
                second.op == "missing" and _same_column(first, second, evaluator):
            part, keep_empty = first, True
    if not isinstance(part, Test) or part.field.tag:
        return None, None
    try:
        names = evaluator.columns(part.field)
    except WhereError:
        return None, None
    name = names[0]
    if name == "proposal":
        return None, None
    is_time = name == "timestamp"
    op, value = part.op, part.value
    model: dict[str, Any] = {}
    if op in ("missing", "error", "value"):
        model["presence"] = {"missing": "empty"}.get(op, op)
    elif op in (">=", "<=") and evaluator.number(value, is_time) is not None:
        model["min" if op == ">=" else "max"] = evaluator.number(value, is_time)
    elif op == "in" and len(value) == 1 and isinstance(value[0], Range):
        for end, key in ((value[0].low, "min"), (value[0].high, "max")):
            if end is not None:
                model[key] = evaluator.number(end, is_time)
        if None in model.values():
            return None, None
    elif op in ("=", "in") and not is_time:
        items = value if op == "in" else (value,)
        if any(isinstance(i, Range) for i in items):
            return None, None
        model["choices"] = [_choice_key(i) for i in items]
        if all(isinstance(i, (int, float)) and not isinstance(i, bool) for i in items):
            model["numbers"] = True
    elif op == "contains":
        model["text"] = str(value)
    else:
        return None, None
    if keep_empty:
        if not ({"min", "max", "choices"} & set(model)):
            return None, None
        model["keepEmpty"] = True
    return name, model


def _same_column(a: Test, b: Test, evaluator: _Evaluator) -> bool:
    try:
        return evaluator.columns(a.field) == evaluator.columns(b.field)
    except WhereError:
        return False


def _choice_key(value: Any) -> str:
    """A value as the GUI's checklist keys it (JavaScript's ``String(value)``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


# -- evaluation -----------------------------------------------------------------------

@dataclass
class _Cells:
    """A column as the evaluator sees it: kinds and values, one per row."""

    kind: np.ndarray
    values: np.ndarray

    @cached_property
    def numbers(self) -> tuple[np.ndarray, np.ndarray]:
        """The cells as float64 (NaN where not a number), and which are numbers."""
        return _numbers(self)


def rows_where(table: TableColumns, where: str | Node | None, timezone: str = "UTC"
               ) -> np.ndarray:
    """One boolean per row of *table*: which runs *where* keeps (all for an empty
    one). Times in the expression without an offset are in *timezone* (the folder's
    ``timezone`` setting). Raises :class:`WhereError`."""
    node = parse(where) if isinstance(where, str) else where
    if node is None:
        return np.ones(len(table), dtype=bool)
    return _Evaluator(table, timezone).eval(node)


class _Evaluator:
    def __init__(self, table: TableColumns, timezone: str) -> None:
        self.table = table
        self.timezone = timezone

    def eval(self, node: Node) -> np.ndarray:
        if isinstance(node, Not):
            return ~self.eval(node.part)
        if isinstance(node, And):
            out = self.eval(node.parts[0])
            for part in node.parts[1:]:
                out &= self.eval(part)
            return out
        if isinstance(node, Or):
            out = self.eval(node.parts[0])
            for part in node.parts[1:]:
                out |= self.eval(part)
            return out
        out = np.zeros(len(self.table), dtype=bool)
        for name in self.columns(node.field):
            out |= self.test(self.cells(name), node, name == "timestamp")
        return out

    # Which columns a field means.
    def columns(self, field: Field) -> list[str]:
        table = self.table
        if field.tag:
            names = [m.name for m in table.variables.values()
                     if field.name.lower() in (t.lower() for t in m.tags)]
            if not names:
                tags = sorted({t for m in table.variables.values() for t in m.tags})
                raise WhereError(f"no column has the tag {field.name!r}"
                                 + (f" (tags: {', '.join(tags)})" if tags else ""))
            return names
        wanted = field.name
        if wanted in table.columns or wanted in FIXED_FIELDS:
            return [wanted]
        if wanted == "start_time":
            return ["timestamp"]
        titled = [m.name for m in table.variables.values() if m.title == wanted]
        if not titled:
            titled = [m.name for m in table.variables.values()
                      if (m.title or "").lower() == wanted.lower()
                      or m.name.lower() == wanted.lower()]
        if len(titled) == 1:
            return titled
        if len(titled) > 1:
            raise WhereError(f"{wanted!r} is the title of several columns "
                             f"({', '.join(titled)}): use one of these names")
        known = list(table.columns) + [m.title for m in table.variables.values() if m.title]
        close = difflib.get_close_matches(wanted, known + list(FIXED_FIELDS), n=3)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise WhereError(f"no column named {wanted!r}{hint}")

    def cells(self, name: str) -> _Cells:
        table = self.table
        n = len(table)
        if name in ("run", "proposal"):
            return _Cells(np.full(n, KIND_VALUE, np.uint8), getattr(table, name))
        if name == "timestamp":
            times = table.start_time
            kind = np.where(np.isnan(times), KIND_MISSING, KIND_VALUE).astype(np.uint8)
            return _Cells(kind, times)
        column = table.columns.get(name)
        if column is None:  # a fixed field without cells yet (no comment anywhere)
            return _Cells(np.zeros(n, np.uint8), np.full(n, None, dtype=object))
        return _Cells(column.kind, column.values)

    def test(self, cells: _Cells, test: Test, is_time: bool) -> np.ndarray:
        kind = cells.kind
        if test.op == "missing":
            return (kind == KIND_MISSING) | (kind == KIND_NONE)
        if test.op == "error":
            return kind == KIND_ERROR
        if test.op == "value":
            return (kind != KIND_MISSING) & (kind != KIND_NONE) & (kind != KIND_ERROR)
        if test.op == "contains":
            needle = str(test.value).lower()
            texts = self.times(cells) if is_time else _texts(cells)
            return np.array([t is not None and needle in t.lower() for t in texts], bool)
        if test.op == "in":
            out = np.zeros(len(kind), dtype=bool)
            for item in test.value:
                if isinstance(item, Range):
                    numbers, is_number = cells.numbers
                    low = -math.inf if item.low is None else self.number(item.low, is_time)
                    high = math.inf if item.high is None else self.number(item.high, is_time)
                    if low is None or high is None:
                        continue
                    with np.errstate(invalid="ignore"):
                        out |= is_number & (numbers >= low) & (numbers <= high)
                else:
                    out |= self.equal(cells, item, is_time)
            return out
        if test.op == "=":
            return self.equal(cells, test.value, is_time)
        if test.op == "!=":
            return (kind == KIND_VALUE) & ~self.equal(cells, test.value, is_time)
        bound = self.number(test.value, is_time)
        if bound is None:
            # Text compares by equality only: `<` on text keeps nothing, rather than
            # an order nobody asked for.
            raise WhereError(f"{test.text()}: {test.op} compares numbers (or times); "
                             f"{_literal(test.value)} is not one")
        numbers, is_number = cells.numbers
        with np.errstate(invalid="ignore"):
            compared = {"<": numbers < bound, "<=": numbers <= bound,
                        ">": numbers > bound, ">=": numbers >= bound}[test.op]
        return is_number & compared

    def equal(self, cells: _Cells, value: Any, is_time: bool) -> np.ndarray:
        if isinstance(value, str) and not is_time:
            values, kind = cells.values, cells.kind
            if values.dtype != object:
                return np.zeros(len(values), dtype=bool)
            # (Element by element: a number never equals a text.)
            out = (kind == KIND_VALUE) & (values == value)
            # A complex number equals the text the table shows for it.
            for i in np.flatnonzero(kind == KIND_COMPLEX).tolist():
                out[i] = _complex_text(values[i]) == value
            return out
        target = self.number(value, is_time)
        if target is None:
            return np.zeros(len(cells.kind), dtype=bool)
        numbers, is_number = cells.numbers
        with np.errstate(invalid="ignore"):
            return is_number & (numbers == target)

    def times(self, cells: _Cells) -> list[str | None]:
        """Times as the table shows them (``2026-03-01 14:30:00``, the folder's zone)."""
        zone = ZoneInfo(self.timezone)
        return [None if k != KIND_VALUE else
                datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M:%S")
                for k, t in zip(cells.kind.tolist(), cells.values.tolist(), strict=True)]

    def number(self, value: Any, is_time: bool) -> float | None:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, (int, float)):
            return float(value)
        if is_time and isinstance(value, str):
            return _epoch(value, self.timezone)
        return None


def _numbers(cells: _Cells) -> tuple[np.ndarray, np.ndarray]:
    values, kind = cells.values, cells.kind
    is_value = kind == KIND_VALUE
    if values.dtype != object:
        numbers = values.astype(np.float64, copy=False)
        return numbers, is_value & ~np.isnan(numbers)
    numbers = np.full(len(values), np.nan)
    for i in np.flatnonzero(is_value).tolist():
        v = values[i]
        if isinstance(v, (int, float)) and not isinstance(v, complex):
            numbers[i] = float(v)
    return numbers, ~np.isnan(numbers)


def _texts(cells: _Cells) -> Sequence[str | None]:
    """The text of each cell that holds a value (numbers as the table shows them)."""
    values, kind = cells.values, cells.kind
    out: list[str | None] = [None] * len(values)
    for i in np.flatnonzero(shown(kind)).tolist():
        v = values[i]
        if isinstance(v, str):
            out[i] = v
        elif isinstance(v, complex):
            out[i] = _complex_text(v)
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out[i] = _number_text(float(v))
    return out


def _number_text(x: float) -> str:
    """A number as the table shows it alone (``formatNumber`` of frontend/src/format.ts)."""
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("∞" if x > 0 else "-∞")
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if x != 0 and not 1e-4 <= abs(x) < 1e4:
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{x:.4e}")
    return f"{x:.4f}"


def _complex_text(z: complex) -> str:
    """``re±imj`` as the table shows a complex number (and its filter's checklist)."""
    sign = "-" if z.imag < 0 or math.copysign(1, z.imag) < 0 else "+"
    return f"{_number_text(z.real)}{sign}{_number_text(abs(z.imag))}j"


def _epoch(text: str, timezone: str) -> float:
    """Epoch seconds of an ISO date/time; without an offset it is in *timezone*."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WhereError(f"{text!r} is not a time: write e.g. \"2026-03-01 14:30\" "
                         "(in the folder's time zone) or \"2026-03-01T14:30+01:00\"") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
    return when.timestamp()
