# Terraform 1.5 is the newest version OCI Resource Manager runs; nothing here needs more
# (no cross-variable validation, no provider-defined functions).
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    oci = {
      source = "oracle/oci"
      # Checked offline against the v8.28.0 provider schema (tests/terraform); minor
      # releases within 8.x keep these arguments.
      version = "~> 8.28"
    }
  }
}
