"""The Terraform type of a resource construct, without a jsii round trip per read.

Every read of a construct's property is a jsii round trip. The google provider's bindings put
each resource class in the module named after its type (`cdktn_provider_google.storage_bucket`
holds `google_storage_bucket`), so the type is read from the class's module; any other class is
asked through jsii, once (tests/test_ordering.py checks the rule on every class a synth uses).
"""

from __future__ import annotations

from cdktn import TerraformResource

PROVIDER_MODULE = "cdktn_provider_google."
_TYPES: dict[type, str] = {}


def resource_type(resource: TerraformResource) -> str:
    cls = type(resource)
    rtype = _TYPES.get(cls)
    if rtype is None:
        module = cls.__module__
        if module.startswith(PROVIDER_MODULE) and module.count(".") == 1:
            rtype = "google_" + module[len(PROVIDER_MODULE):]
        else:
            rtype = resource.terraform_resource_type
        _TYPES[cls] = rtype
    return rtype
