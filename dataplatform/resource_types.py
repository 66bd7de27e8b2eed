"""The Terraform type of a resource construct, read from jsii once per provider class.

Every read of a construct's property is a jsii round trip; the type is the same for every
instance of a class, so the labels and the dependency wiring share this one cache.
"""

from __future__ import annotations

from cdktn import TerraformResource

_TYPES: dict[type, str] = {}


def resource_type(resource: TerraformResource) -> str:
    cls = type(resource)
    rtype = _TYPES.get(cls)
    if rtype is None:
        rtype = _TYPES[cls] = resource.terraform_resource_type
    return rtype
