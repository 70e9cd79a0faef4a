# The vault and AES key that encrypt the certificate secrets (and the buckets), unless
# existing_vault names them. The secrets themselves are created by the renewer on first
# issuance (<name_prefix>-<certificate name>); outputs.tf looks them up.

resource "oci_kms_vault" "this" {
  count = var.existing_vault == null ? 1 : 0

  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-renewer"
  vault_type     = "DEFAULT"
  freeform_tags  = local.tags
}

resource "oci_kms_key" "this" {
  count = var.existing_vault == null ? 1 : 0

  compartment_id      = var.compartment_ocid
  display_name        = "${var.name_prefix}-renewer"
  management_endpoint = one(oci_kms_vault.this[*].management_endpoint)
  protection_mode     = "HSM"
  freeform_tags       = local.tags

  key_shape {
    algorithm = "AES"
    length    = 32
  }
}
