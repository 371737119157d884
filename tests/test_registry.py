"""The name registry shared by configs, CLI and checkpoints."""

from __future__ import annotations

import pytest

from rnnkit.registry import Registry, UnknownNameError


def test_register_get_and_list() -> None:
    registry: Registry[int] = Registry("thing")
    registry.register("one", 1, description="the first")

    @registry.register("two")
    def two() -> int:
        return 2

    assert registry.get("one") == 1 and registry.get("two") is two
    assert registry.names() == ["one", "two"] and "one" in registry and len(registry) == 2
    assert registry.description("one") == "the first"


def test_unknown_name_suggests_and_lists() -> None:
    registry: Registry[int] = Registry("recipe")
    registry.register("digits", 1)
    registry.register("imdb", 2)
    with pytest.raises(
        UnknownNameError,
        match=r"unknown recipe 'digts'; did you mean 'digits'\? valid: digits, imdb",
    ):
        registry.get("digts")
    with pytest.raises(ValueError, match="valid: digits, imdb"):  # also a ValueError
        registry.get("zzz")


def test_duplicate_names_are_refused() -> None:
    registry: Registry[int] = Registry("thing")
    registry.register("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", 2)
