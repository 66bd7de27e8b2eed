"""Where each construct sits, known in Python: its scope and id, recorded as jsii creates it.

`construct.node.path` costs two jsii round trips and `TerraformStack.of(construct)` one; a synth
would ask for ~400 of them (the stack of each construct that grants, the JSON entry of each
resource the dependency wiring names or gives a "//" comment). Every construct, ours or the
provider's, is created through `jsii.create(cls, obj, [scope, id, ...])`: `install()` wraps that
call to remember the scope and id, and `path`/`stack_of` answer from the record. A construct
created before `install()` (or outside Python) is asked through jsii, as before; tests/test_ordering.py
checks both answers against jsii's for every construct of every environment.
"""

from __future__ import annotations

import weakref
from typing import Any

from cdktn import TerraformStack
from constructs import Construct

_SCOPE: "weakref.WeakKeyDictionary[Any, tuple[Any, str]]" = weakref.WeakKeyDictionary()
"""construct -> (its scope, its id); the root of a tree (an App) -> (None, "")."""
_installed = False


def install() -> None:
    """Record the scope and id of every construct created from now on (idempotent)."""
    global _installed
    if _installed:
        return
    import jsii

    create = jsii.create

    def recording_create(cls, obj, args=None):
        ref = create(cls, obj, args)
        if isinstance(obj, Construct):
            scope, id_, *_ = [*(args or ()), None, None]
            if not isinstance(scope, Construct):  # App(config): the root of a tree
                _SCOPE[obj] = (None, "")
            elif isinstance(id_, str):  # not a backend: cdktn names it (its second argument is its config)
                _SCOPE[obj] = (scope, id_)
        return ref

    jsii.create = recording_create
    _installed = True


def path(construct: Construct) -> str:
    """`construct.node.path` ("stack/parent/id"; "" for the root)."""
    record = _SCOPE.get(construct)
    if record is None:
        return construct.node.path
    scope, id_ = record
    if scope is None:
        return ""
    parent = path(scope)
    return f"{parent}/{id_}" if parent else id_


def stack_of(construct: Construct) -> TerraformStack:
    """`TerraformStack.of(construct)`: the nearest TerraformStack at or above it."""
    node: Any = construct
    while node is not None:
        if isinstance(node, TerraformStack):
            return node
        record = _SCOPE.get(node)
        if record is None:
            return TerraformStack.of(node)
        node = record[0]
    return TerraformStack.of(construct)  # a root that is no stack: jsii says why
