# The renewer function, its application and its invocation log.

resource "oci_functions_application" "this" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-renewer"
  subnet_ids     = var.function_subnet_ids
  shape          = "GENERIC_X86"
  freeform_tags  = local.tags
}

resource "oci_functions_function" "renewer" {
  application_id     = oci_functions_application.this.id
  display_name       = "renewer"
  image              = var.function_image
  memory_in_mbs      = tostring(var.function_memory_in_mbs)
  timeout_in_seconds = var.function_timeout_in_seconds
  # Fan-out parts (renewer/fanout.py) run detached, up to this long each.
  detached_mode_timeout_in_seconds = var.function_detached_timeout_in_seconds
  # Only the location of the configuration: OCI limits function configuration to 4 KB.
  config = {
    RENEWER_CONFIG_OBJECT = "${local.state_bucket_name}/${local.config_object_name}"
  }
  freeform_tags = local.tags
}

resource "oci_logging_log_group" "this" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-renewer"
  description    = "Logs of the ACME renewer (${var.name_prefix})."
  freeform_tags  = local.tags
}

resource "oci_logging_log" "invocations" {
  display_name       = "${var.name_prefix}-renewer-invoke"
  log_group_id       = oci_logging_log_group.this.id
  log_type           = "SERVICE"
  is_enabled         = true
  retention_duration = var.log_retention_days
  freeform_tags      = local.tags

  configuration {
    compartment_id = var.compartment_ocid

    source {
      category    = "invoke"
      resource    = oci_functions_application.this.id
      service     = "functions"
      source_type = "OCISERVICE"
    }
  }
}
