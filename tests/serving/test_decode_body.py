"""Content-Encoding: gzip and deflate bodies are inflated within the body limit."""

from __future__ import annotations

import gzip
import zlib

import pytest

from modelport.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from modelport.serving.app import decode_body


def test_identity_gzip_and_deflate() -> None:
    body = b'{"inputs": []}' * 10
    assert decode_body(body, None, 1000) == body
    assert decode_body(body, "identity", 1000) == body
    assert decode_body(gzip.compress(body), "gzip", 1000) == body
    assert decode_body(zlib.compress(body), "Deflate", 1000) == body


def test_decompression_bomb_is_refused_without_inflating_it_all() -> None:
    bomb = gzip.compress(b"0" * (50 << 20))  # 50 MiB of zeros in ~50 KiB
    with pytest.raises(PayloadTooLargeError, match="decompressed body exceeds"):
        decode_body(bomb, "gzip", 1 << 20)


def test_bad_encodings() -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="br"):
        decode_body(b"x", "br", 100)
    with pytest.raises(InvalidInputError, match="not valid gzip"):
        decode_body(b"not gzip", "gzip", 100)
    with pytest.raises(InvalidInputError, match="truncated"):
        decode_body(gzip.compress(b"hello world" * 50)[:-12], "gzip", 10_000)
