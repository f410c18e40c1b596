"""The summary encoding of ``run_variables.value``, read back the ways the readers do."""

from __future__ import annotations

import io

import numpy as np
import pytest

from runtable.store.summaries import decode_summary, encode_summary, npy_parts


@pytest.mark.parametrize("array", [np.arange(6.0).reshape(2, 3),
                                   np.asfortranarray(np.ones((3, 4), np.int16)),
                                   np.array([True, False])])
def test_npy_parts_tell_dtype_shape_and_order_from_the_header_alone(array):
    blob, _ = encode_summary(array)
    dtype, shape, fortran, offset = npy_parts(blob[:128])  # the header fits in 128 bytes
    assert (dtype, shape, fortran) == (array.dtype, array.shape, np.isfortran(array))
    data = np.frombuffer(blob, dtype, offset=offset).reshape(shape, order="F" if fortran else "C")
    np.testing.assert_array_equal(data, array)


def test_npy_parts_of_something_else_is_none():
    assert npy_parts(b"\x89PNG\r\n\x1a\n....") is None
    assert npy_parts(b"\x93NUMPY") is None


def test_an_untyped_npy_blob_is_an_array_only_when_asked():
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    blob = buf.getvalue()
    assert decode_summary(blob, None) == blob
    np.testing.assert_array_equal(decode_summary(blob, None, untyped_npy=True), np.arange(3))
    assert decode_summary(b"\x89PNG\r\n\x1a\nxx", None, untyped_npy=True) == b"\x89PNG\r\n\x1a\nxx"
