from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import block, is_true, value


class ComposerPrivateEnvironment(BaseResourceCheck):
    """Composer 3 `enable_private_environment` or Composer 2 private endpoint (guardrail GR-CMP-008)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure Composer environments are private (no public IPs)", id="CKV_DP_1",
                         categories=(CheckCategories.NETWORKING,), supported_resources=("google_composer_environment",))

    def scan_resource_conf(self, conf):
        config = block(conf, "config")
        self.evaluated_keys = ["config/[0]/enable_private_environment",
                               "config/[0]/private_environment_config/[0]/enable_private_endpoint"]
        private = is_true(value(config, "enable_private_environment")) or \
            is_true(value(block(config, "private_environment_config"), "enable_private_endpoint"))
        return CheckResult.PASSED if private else CheckResult.FAILED


check = ComposerPrivateEnvironment()
