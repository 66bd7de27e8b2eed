"""dataplatform.construct_tree (paths and stacks without a jsii read) and dataplatform.comments
("//" comments written into the stack's JSON at synth)."""

from __future__ import annotations

import pytest

from dataplatform import comments, construct_tree


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
