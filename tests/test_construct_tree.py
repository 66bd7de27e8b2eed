"""dataplatform.construct_tree (paths and stacks without a jsii read) and dataplatform.comments
("//" comments written into the stack's JSON at synth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataplatform import comments, construct_tree

REPO = Path(__file__).resolve().parent.parent


def test_every_construct_of_every_environment_is_recorded_and_answers_as_jsii_does(synth_app):
    """build_app installs the record before the first construct: only a stack's backend (created with a fixed
    id cdktn chooses, not one passed to it) falls back to jsii, and each answer is jsii's own (node.path,
    TerraformStack.of)."""
    from cdktn import TerraformBackend, TerraformStack

    nodes = [n for s in synth_app.node.children if isinstance(s, TerraformStack) for n in s.node.find_all()]
    assert len(nodes) > 700
    assert {type(n).__name__ for n in nodes if n not in construct_tree._SCOPE} <= {"GcsBackend", "LocalBackend"}
    assert all(isinstance(n, TerraformBackend) for n in nodes if n not in construct_tree._SCOPE)
    assert [(construct_tree.path(n), construct_tree.stack_of(n)) for n in nodes] == [(n.node.path, TerraformStack.of(n)) for n in nodes]
    assert construct_tree.path(synth_app) == ""


def test_paths_and_stacks_of_a_small_tree_come_from_the_record(monkeypatch):
    """Recorded at creation: the root is "", a stack its id, below it ids joined by "/"; the stack of a
    construct is the nearest stack above it, itself for a stack. Nothing is read through jsii."""
    from cdktn import App, TerraformStack
    from cdktn_provider_google.project_service import ProjectService
    from constructs import Construct

    construct_tree.install()
    construct_tree.install()  # idempotent: one wrapper, not two
    app = App(outdir="unused")
    stack = TerraformStack(app, "s")
    outer = Construct(stack, "outer")
    api = ProjectService(Construct(outer, "inner"), "api", service="storage.googleapis.com")
    assert all(c in construct_tree._SCOPE for c in (app, stack, outer, api))
    reads = []
    node = Construct.node.fget
    monkeypatch.setattr(Construct, "node", property(lambda self: reads.append(self) or node(self)))
    of = TerraformStack.of
    monkeypatch.setattr(TerraformStack, "of", staticmethod(lambda c: reads.append(c) or of(c)))
    assert [construct_tree.path(c) for c in (app, stack, outer, api)] == ["", "s", "s/outer", "s/outer/inner/api"]
    assert construct_tree.stack_of(api) is construct_tree.stack_of(outer) is construct_tree.stack_of(stack) is stack
    assert reads == []
    with pytest.raises(RuntimeError, match="No stack could be identified for the construct at path ''"):
        construct_tree.stack_of(app)  # a root that is no stack: jsii says why
    assert reads == [app]


def test_a_fresh_process_starts_unrecorded_and_install_wraps_jsii_create():
    import subprocess
    import sys

    probe = ("from dataplatform import construct_tree as t; import jsii; before = t._installed; t.install(); "
             "print(before, t._installed, jsii.create.__name__)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "True", "recording_create"], result.stderr


def test_install_wraps_jsii_create_once(monkeypatch):
    import jsii

    monkeypatch.setattr(construct_tree, "_installed", False)
    original = jsii.create
    construct_tree.install()
    wrapped = jsii.create
    construct_tree.install()
    assert wrapped is not original and jsii.create is wrapped


def test_a_backend_is_not_recorded_and_a_construct_below_an_unrecorded_scope_still_answers():
    """A backend's second argument is its config, not an id (cdktn names it): it is asked through jsii;
    a construct created under a scope the record lacks is recorded and answers through that scope."""
    from cdktn import LocalBackend, TerraformStack
    from constructs import Construct

    from tests.support import new_stack

    construct_tree.install()
    stack = new_stack()
    backend = LocalBackend(stack, path="state.tfstate")
    assert backend not in construct_tree._SCOPE and construct_tree.path(backend) == backend.node.path == "test/backend"
    outer = Construct(stack, "outer")
    construct_tree._SCOPE.pop(outer)
    inner = Construct(outer, "inner")
    assert construct_tree._SCOPE[inner] == (outer, "inner")
    assert construct_tree.path(inner) == "test/outer/inner" and construct_tree.stack_of(inner) is TerraformStack.of(inner) is stack


def test_a_construct_created_without_the_record_is_asked_through_jsii():
    from cdktn import TerraformStack
    from constructs import Construct

    from tests.support import new_stack

    stack = new_stack()
    inner = Construct(Construct(stack, "outer"), "inner")
    construct_tree._SCOPE.pop(inner, None)
    assert construct_tree.path(inner) == inner.node.path == "test/outer/inner"
    assert construct_tree.stack_of(inner) is TerraformStack.of(inner) is stack


def test_comments_are_written_into_their_own_stacks_entries_only():
    from cdktn_provider_google.project_service import ProjectService

    from tests.support import new_stack

    stack, other = new_stack(), new_stack()
    mine = ProjectService(stack, "api", service="storage.googleapis.com")
    gone = ProjectService(stack, "gone", service="pubsub.googleapis.com")
    theirs = ProjectService(other, "api", service="storage.googleapis.com")
    comments.comment(mine, "why", "the lake needs it")
    comments.comment(mine, "who", "platform")
    comments.comment(gone, "why", "moved away")
    comments.comment(theirs, "why", "another stack's")
    doc = stack.to_terraform()
    del doc["resource"]["google_project_service"][stack.get_logical_id(gone)]
    assert comments.write(stack, doc) is doc
    (body,) = doc["resource"]["google_project_service"].values()
    assert {k: v for k, v in body["//"].items() if k != "metadata"} == {"why": "the lake needs it", "who": "platform"}
    assert body["//"]["metadata"]["path"] == "test/api"


@pytest.mark.parametrize("key", ["project_scope_reason", "grant_reason", "audit_reason"])
def test_the_synthesized_stacks_carry_the_reasons(stacks, key):
    """The three kinds of reason the constructs record reach cdk.tf.json, and none is empty."""
    found = [body["//"][key] for s in stacks.values() for items in s.get("resource", {}).values() for body in items.values()
             if key in body.get("//", {})]
    assert found and all(isinstance(text, str) and text.strip() for text in found)
