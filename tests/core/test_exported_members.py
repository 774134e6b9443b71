"""The public surface is stated explicitly: every name in `aisp.__all__` resolves."""

from __future__ import annotations

import aisp


def test_all_public_names_resolve() -> None:
    for name in aisp.__all__:
        assert getattr(aisp, name) is not None, name


def test_dir_lists_public_names() -> None:
    assert set(aisp.__all__) <= set(dir(aisp))
