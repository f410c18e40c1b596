"""Encoding single cells and columns for the table protocol, and parsing filters."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest

from runtable.server import table as tbl
from runtable.server.cells import parse_names
from runtable.server.table import encoding, wire
from runtable.store import table as st
from runtable.store.columns import AFTER_ATTR
from runtable.store.table import VariableMeta


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_trendline_is_downsampled_to_200_points() -> None:
    blob = npy(np.vstack([np.arange(500.0), np.arange(500.0) * 2]))
    out, extra = tbl.encode_cell(st.KIND_TRENDLINE, None, None, None, None, blob)
    assert out is None
    assert extra["kind"] == "trendline"
    points = extra["points"]
    assert len(points) == encoding.MAX_POINTS
    assert points[0] == 0.0 and points[-1] == 998.0


def test_trendline_nan_points_are_null_and_short_ones_stay_whole() -> None:
    blob = npy(np.vstack([np.arange(3.0), [1.0, np.nan, 1 / 3]]))
    _, extra = tbl.encode_cell(st.KIND_TRENDLINE, None, None, None, None, blob)
    assert extra["points"] == [1.0, None, 0.3333]  # 5 digits of the largest


def test_array_label_reads_only_the_header() -> None:
    blob = npy(np.zeros((2, 3, 4), dtype=np.float32))[:200]  # as the reader fetches it
    out, extra = tbl.encode_cell(st.KIND_ARRAY, None, None, None, None, blob)
    assert out == "float32: (2, 3, 4)"
    assert extra == {"kind": "array"}


@pytest.mark.parametrize(("value", "expected"), [
    (float("nan"), None), (float("inf"), "inf"), (float("-inf"), "-inf"), (2.5, 2.5),
    (7, 7), ("text", "text"),
])
def test_values_are_valid_json(value, expected) -> None:
    out, extra = tbl.encode_cell(st.KIND_VALUE, value, None, "context.py", None)
    assert out == expected and extra is None
    json.dumps(out, allow_nan=False)


def test_booleans_of_user_variables_are_booleans() -> None:
    assert tbl.encode_cell(st.KIND_VALUE, 1, None, "", None, boolean=True) == (
        True, {"provenance": "user"})
    assert tbl.encode_cell(st.KIND_VALUE, 0, None, "", None, boolean=True)[0] is False


def test_styles_max_diff_and_provenance() -> None:
    attrs = {"bold": True, "background": [255, 128, 0], "units": "mJ"}
    out, extra = tbl.encode_cell(st.KIND_VALUE, 1.0, attrs, "submitted", 0.5)
    assert out == 1.0
    assert extra == {"bold": True, "background": "#ff8000", "units": "mJ",
                     "max_diff": True, "provenance": "external"}
    # Tiny variation, or none recorded: not bold; a NULL provenance is the context file's.
    assert tbl.encode_cell(st.KIND_VALUE, 1.0, None, None, 1e-12) == (1.0, None)


def test_errors_and_skips() -> None:
    err = {"error": "boom", "error_cls": "ValueError"}
    assert tbl.encode_cell(st.KIND_ERROR, None, err, "context.py", None) == (
        None, {"kind": "error", "message": "boom", "error_cls": "ValueError"})
    skip = {"error": "no data", "error_cls": "Skip"}
    assert tbl.encode_cell(st.KIND_ERROR, None, skip, None, None)[1]["kind"] == "skip"


def test_a_source_missing_from_the_run_is_shown_as_skipped_as_in_the_reference() -> None:
    missing = {"error": "This data has no source named 'X'", "error_cls": "SourceNameError"}
    assert tbl.encode_cell(st.KIND_ERROR, None, missing, None, None)[1]["kind"] == "skip"


def test_complex() -> None:
    out, extra = tbl.encode_cell(st.KIND_COMPLEX, 1.5 - 2j, None, None, None)
    assert out == "1.5-2j"
    assert extra == {"kind": "complex", "re": 1.5, "im": -2.0}


def test_encoded_column_json_follows_changes_in_one_chunk() -> None:
    n = encoding.CHUNK_ROWS * 2 + 5
    col = tbl.EncodedColumn.empty(n, units="mJ")
    for i in range(n):
        col.set(i, float(i), {"units": "mJ"} if i % 2 else None)
    first = json.loads(col.json())
    assert first["values"] == [float(i) for i in range(n)]
    assert first["cells"] == {}  # units equal to the column's are not repeated
    col.set(3, None, {"kind": "error", "message": "x", "error_cls": "E"})
    col.grow(n + 2)
    col.set(n + 1, "late", {"units": "J"})
    second = json.loads(col.json())
    assert second["values"][3] is None
    assert second["values"][n:] == [None, "late"]
    assert second["cells"] == {"3": {"kind": "error", "message": "x", "error_cls": "E"},
                               str(n + 1): {"units": "J"}}
    assert col.subset([n + 1, 3]) == {"values": ["late", None], "cells": {
        "0": {"units": "J"}, "1": {"kind": "error", "message": "x", "error_cls": "E"}}}


def meta(name: str, vtype: str | None = None, after: str | None = None) -> VariableMeta:
    attrs = {AFTER_ATTR: after} if after else None
    return VariableMeta(name, name.upper(), None, vtype, attrs, ())


def test_column_order_places_user_variables_after_their_anchor() -> None:
    variables = [meta("a"), meta("u1", "string", after="b"), meta("b"), meta("c"),
                 meta("u2", "number", after="comment"), meta("u3", "boolean"),
                 meta("u4", "integer", after="u1"), meta("u5", "string", after="gone")]
    order = [c.name for c in tbl.column_order(variables, ["a", "b", "c", "z_extra",
                                                          "comment"])]
    assert order == ["u2", "a", "b", "u1", "u4", "c", "z_extra", "u3", "u5"]


def test_parse_names() -> None:
    assert parse_names("a, b,,c") == {"a", "b", "c"}
    assert parse_names("") is None


def test_gzip_from_pieces_is_one_valid_stream() -> None:
    zipper = wire.Gzipped()
    pieces = [b'{"a":[' + b"1.5," * 5000 + b'0]', b',"b":"' + "é".encode() * 3000 + b'"']
    first = zipper.body(pieces, b',"seq":1}')
    assert gzip.decompress(first) == b"".join(pieces) + b',"seq":1}'
    json.loads(gzip.decompress(first))
    # One piece changed, another tail: still one valid stream with the right content.
    pieces = [pieces[0], b',"b":"changed"']
    second = zipper.body(pieces, b',"seq":22}')
    assert gzip.decompress(second) == b"".join(pieces) + b',"seq":22}'
    assert json.loads(gzip.decompress(second))["b"] == "changed"


def test_a_columns_trendlines_at_once_are_the_same_as_one_by_one() -> None:
    """The whole-column path (arrays of one layout stacked) gives every line's points
    exactly as the one-cell path, odd lines included."""
    from runtable.server.table.encoding import trendline_points, trendline_points_many
    from runtable.server.table.wire import dumps

    def npy(array: np.ndarray) -> bytes:
        out = io.BytesIO()
        np.save(out, array)
        return out.getvalue()

    rng = np.random.default_rng(0)
    blobs = [npy(np.vstack([np.arange(150.0), rng.normal(size=150) * 10.0 ** int(e)]))
             for e in rng.integers(-5, 5, size=30)]
    blobs += [npy(rng.normal(size=300) * 1e3), npy(np.array([1.5, np.nan, 2.5])),
              npy(np.zeros(5)), npy(np.array([np.nan, np.inf])), b"not an array",
              npy(np.asfortranarray(rng.normal(size=(2, 7)))),
              npy(np.asfortranarray(rng.normal(size=(2, 7)))),
              npy(np.arange(10, dtype=np.int32)), npy(np.array([1e-300, 2e-300])),
              npy(np.arange(6, dtype=">f8"))]
    many = [json.loads(dumps(points)) for points in trendline_points_many(blobs)]
    assert many == [trendline_points(blob) for blob in blobs]


def test_a_whole_column_skips_attributes_that_change_nothing_and_keeps_the_rest() -> None:
    """Encoding a whole column leaves out cells whose attributes say nothing new (the
    column's own units on every cell; a plain thumbnail) and keeps those that do: other
    units, bold, a failed later job (``failed``), errors."""
    from runtable.store.fragments import FAILED_ATTR

    n = 6
    kind = np.array([st.KIND_VALUE] * 4 + [st.KIND_IMAGE, st.KIND_ERROR], np.uint8)
    values = np.array([1.0, 2.0, 3.0, 4.0, np.nan, np.nan])
    own = {"units": "mJ"}
    attributes = {0: own, 1: {"units": "J"}, 2: {"units": "mJ", "bold": True},
                  3: {"units": "mJ", FAILED_ATTR: {"error": "oom", "error_cls": "MemoryError"}},
                  5: {"error": "boom", "error_cls": "ValueError"}}
    table = st.TableColumns(
        np.full(n, 1234), np.arange(1, n + 1), np.zeros(n), np.zeros(n),
        {"x": st.Column("x", kind, values, None, attributes)},
        {"x": VariableMeta("x", "X", None, None, {"units": "mJ"}, ())})
    keys = list(zip(table.proposal.tolist(), table.run.tolist(), strict=True))
    encoded = encoding.encode_table_column(table, keys, "x", None, None, None)  # type: ignore[arg-type]
    assert encoded.units == "mJ"
    assert 0 not in encoded.cells
    assert encoded.cells[1] == {"units": "J"}
    assert encoded.cells[2] == {"bold": True}
    assert encoded.cells[3]["failed"] == {"message": "oom", "error_cls": "MemoryError"}
    assert encoded.cells[4] == {"kind": "image"}
    assert encoded.cells[5]["kind"] == "error"
    assert encoded.values[:4] == [1.0, 2.0, 3.0, 4.0]
