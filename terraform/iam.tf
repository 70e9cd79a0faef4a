# Who may do what. Dynamic groups match exactly this function and exactly this container
# instance (by OCID); the statements (documents.tf) are scoped to compartments, bucket names,
# the vault and the key. Policies are attached to the tenancy because the vault and the load
# balancers may live in other compartments; every statement still names its compartment.

resource "oci_identity_dynamic_group" "renewer" {
  compartment_id = var.tenancy_ocid
  name           = local.renewer_dynamic_group
  description    = "The ACME renewer function ${oci_functions_function.renewer.display_name} (${var.name_prefix})."
  matching_rule  = "ALL {resource.type = 'fnfunc', resource.id = '${oci_functions_function.renewer.id}'}"
  freeform_tags  = local.tags
}

resource "oci_identity_dynamic_group" "token_server" {
  count = local.token_backend ? 1 : 0

  compartment_id = var.tenancy_ocid
  name           = local.token_server_dynamic_group
  description    = "The ACME token-server container instance (${var.name_prefix})."
  matching_rule  = "ALL {resource.type = 'computecontainerinstance', resource.id = '${one(oci_container_instances_container_instance.token_server[*].id)}'}"
  freeform_tags  = local.tags
}

resource "oci_identity_policy" "renewer" {
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-renewer"
  description    = "Least privilege for the ACME renewer function (${var.name_prefix})."
  statements     = concat(local.renewer_statements, local.fan_out_statements)
  freeform_tags  = local.tags

  depends_on = [oci_identity_dynamic_group.renewer]
}

resource "oci_identity_policy" "token_server" {
  count = local.token_backend ? 1 : 0

  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-token-server"
  description    = "Read access to the challenge bucket for the ACME token server (${var.name_prefix})."
  statements     = local.token_server_statements
  freeform_tags  = local.tags

  depends_on = [oci_identity_dynamic_group.token_server]
}

resource "oci_identity_policy" "services" {
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-renewer-services"
  description    = "Resource Scheduler and Events may invoke the ACME renewer; Functions may use its subnets (${var.name_prefix})."
  statements     = local.service_statements
  freeform_tags  = local.tags
}
