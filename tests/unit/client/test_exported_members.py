"""The client's public surface is exactly what `__all__` names."""

from __future__ import annotations

import modelyard.client


def test_all_exports_exist_and_are_public() -> None:
    for name in modelyard.client.__all__:
        assert hasattr(modelyard.client, name), name
        assert not name.startswith("_")


def test_public_names_are_all_in_all() -> None:
    public = {
        name
        for name in vars(modelyard.client)
        if not name.startswith("_") and name not in {"annotations"}
    }
    assert public == set(modelyard.client.__all__)
