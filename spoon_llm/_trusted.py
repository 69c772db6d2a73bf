"""Pydantic models built from values the library has already checked, without validating them a second time.

Decoding an answer builds a :class:`~spoon_llm.types.LLMResponse` and its :class:`~spoon_llm.types.TokenUsage`
on every request; validating values whose types the decoder has just checked cost about half of the decode.
:func:`build_trusted` builds the instance the way pydantic's ``model_construct`` does, minus its per-field loop.
The first call for each class compares the result with a validated instance (``==``, ``repr``, ``model_dump``,
JSON); if they differ (a future pydantic), that class is validated from then on.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["build_trusted", "construct"]

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_set = object.__setattr__
# pydantic's own slots of every model instance, set through their descriptors (what model_construct sets).
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__

#: Per class: whether the shortcut builds what validation builds (checked on the class's first use).
_verified: dict[type[BaseModel], bool] = {}


def build_trusted(cls: type[M], values: dict[str, Any], given: frozenset[str]) -> M:
    """An instance of ``cls`` holding ``values``, as ``cls(**{name: values[name] for name in given})`` would build.

    ``values`` must hold every field of ``cls`` in declaration order, each of a type validation keeps unchanged
    (``str`` for a ``str`` field, a model instance for a model field, a fresh list or dict the instance may own);
    ``given`` names the fields the caller set (``model_fields_set``). ``values`` becomes the instance's own dict.
    """
    ok = _verified.get(cls)
    if ok is None:
        ok = _verified[cls] = _builds_the_validated_instance(cls, values, given)
    if not ok:
        return cls(**{name: values[name] for name in given})
    return construct(cls, values, set(given))


def construct(cls: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
    """The instance holding ``values`` (every field, in order, known good) with ``fields_set`` as its set fields.

    No check at all: for callers whose values are of their fields' types by construction (see
    :func:`build_trusted` for values read from a vendor). ``values`` and ``fields_set`` become the instance's own.
    """
    instance = _new(cls)
    _set(instance, "__dict__", values)
    _set_fields_set(instance, fields_set)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


def _builds_the_validated_instance(cls: type[BaseModel], values: dict[str, Any], given: frozenset[str]) -> bool:
    try:
        if list(values) != list(cls.model_fields) or cls.__private_attributes__:
            return False
        validated = cls(**values)
        validated.__pydantic_fields_set__ = set(given)
        fast = construct(cls, dict(values), set(given))
        return (fast == validated and fast.__dict__ == validated.__dict__ and repr(fast) == repr(validated)
                and fast.model_dump() == validated.model_dump()
                and fast.model_dump_json() == validated.model_dump_json()
                and fast.model_fields_set == validated.model_fields_set)
    except Exception:  # noqa: BLE001 - any difference means: validate
        return False
