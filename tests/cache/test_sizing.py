"""Entry sizes: explicit, model attribute, numpy-like nbytes, model file, documented default."""

from __future__ import annotations

import types

import pytest

from aisp.cache import DEFAULT_SIZE_BYTES, estimate_size


class WithNbytes:
    nbytes = 4096


class WithPath:
    def __init__(self, path) -> None:
        self.path = path


class BrokenSize:
    @property
    def size_bytes(self) -> int:
        raise RuntimeError("not loaded")


@pytest.mark.parametrize(
    ("model", "explicit", "expected"),
    [
        (object(), 123, (123, "explicit")),
        (types.SimpleNamespace(size_bytes=77), None, (77, "attribute")),
        (types.SimpleNamespace(size_bytes=77, nbytes=5), None, (77, "attribute")),
        (WithNbytes(), None, (4096, "nbytes")),
        (types.SimpleNamespace(size_bytes=-3, nbytes=9), None, (9, "nbytes")),  # bad attribute ignored
        (types.SimpleNamespace(size_bytes="big"), None, (DEFAULT_SIZE_BYTES, "default")),
        (BrokenSize(), None, (DEFAULT_SIZE_BYTES, "default")),
        (object(), None, (DEFAULT_SIZE_BYTES, "default")),
        (WithPath("/definitely/not/here.tflite"), None, (DEFAULT_SIZE_BYTES, "default")),
    ],
)
def test_size_sources(model, explicit, expected) -> None:
    assert estimate_size(model, explicit) == expected


def test_numpy_array_size_by_duck_typing() -> None:
    np = pytest.importorskip("numpy")
    assert estimate_size(np.zeros((10, 10), dtype=np.float32)) == (400, "nbytes")


def test_model_file_and_directory_sizes(tmp_path) -> None:
    f = tmp_path / "model.onnx"
    f.write_bytes(b"x" * 1500)
    assert estimate_size(WithPath(f)) == (1500, "file")
    assert estimate_size(types.SimpleNamespace(model_path=str(f))) == (1500, "file")
    d = tmp_path / "saved"
    d.mkdir()
    (d / "a.bin").write_bytes(b"x" * 10)
    (d / "sub").mkdir()
    (d / "sub" / "b.bin").write_bytes(b"x" * 5)
    assert estimate_size(WithPath(d)) == (15, "file")


def test_negative_explicit_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="size_bytes"):
        estimate_size(object(), -1)


def test_cache_uses_the_estimated_size(make_cache) -> None:
    cache = make_cache()
    cache.put("arr", WithNbytes())
    cache.put("unknown", object())
    assert cache.info("arr").size_bytes == 4096
    assert cache.info("unknown").size_source == "default"
    assert cache.get_stats().memory_usage_bytes == 4096 + DEFAULT_SIZE_BYTES
