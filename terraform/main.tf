# Composition: names, tags, the values derived from resources that documents.tf reads, and the
# checks across variables that a validation block cannot make (Terraform 1.5).

locals {
  # The renewer tags what it creates with the same freeform tag (renewer/naming.py): one
  # query finds everything the product owns.
  tags = merge(var.freeform_tags, { "managed-by" = "oci-acme-renewer" })

  namespace = data.oci_objectstorage_namespace.this.namespace

  # Resource-derived inputs of documents.tf. With an existing vault the stack creates none.
  vault_id    = var.existing_vault == null ? one(oci_kms_vault.this[*].id) : var.existing_vault.vault_id
  key_id      = var.existing_vault == null ? one(oci_kms_key.this[*].id) : var.existing_vault.key_id
  schedule_id = oci_resource_scheduler_schedule.renew.id
  topic_id    = oci_ons_notification_topic.this.id

  # Certificate targets naming a load balancer key that load_balancers does not define.
  unknown_load_balancer_keys = distinct(flatten([
    for c in var.certificates : [
      for t in c.targets : t.load_balancer if t.load_balancer != null && !contains(keys(var.load_balancers), coalesce(t.load_balancer, "-"))
    ]
  ]))

  # Names on the load balancers: rule sets and routing policies accept letters, digits and '_'.
  lb_name_prefix      = replace(var.name_prefix, "-", "_")
  challenge_path      = "/.well-known/acme-challenge/"
  token_server_port   = 8080
  function_invoke_ref = "${oci_functions_application.this.display_name} ${oci_functions_function.renewer.display_name}"
}

data "oci_objectstorage_namespace" "this" {
  compartment_id = var.tenancy_ocid
}
