"""A check that a serializable class's `get_config` holds every constructor argument: rebuilding from a
config that lacks one would silently use its default."""

from __future__ import annotations

import inspect


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def assert_config_holds_the_constructor_arguments(cls, **arguments) -> None:
    """`arguments` must name every constructor parameter (but **kwargs), each with a value other than its
    default; each must come back from `get_config()`, and `from_config` must rebuild the same object."""
    parameters = {
        name: parameter.default
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    }
    assert sorted(arguments) == sorted(parameters), f"give every argument of {cls.__name__}"
    for name, value in arguments.items():
        assert _plain(value) != _plain(parameters[name]), f"{name}: use a value other than the default"
    config = cls(**arguments).get_config()
    for name, value in arguments.items():
        assert name in config, f"{cls.__name__}.get_config() lacks {name!r}"
        assert _plain(config[name]) == _plain(value), name
    assert cls.from_config(config).get_config() == config
