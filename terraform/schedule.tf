# What invokes the function: Resource Scheduler twice a day, and OCI Events whenever the
# configuration object is written (so a newly added certificate is issued at once).

locals {
  # The body of every scheduled invocation. "trigger" makes the run journaled (and notified)
  # as scheduled rather than manual: renewer/invocation.py, tested with this very value
  # (tests/terraform/test_schedule_body.py).
  schedule_body = jsonencode({ action = "renew", trigger = "schedule" })
}

resource "oci_resource_scheduler_schedule" "renew" {
  compartment_id     = var.compartment_ocid
  display_name       = "${var.name_prefix}-renew"
  description        = "Scheduled renew run of the ACME renewer (${var.name_prefix})."
  action             = "START_RESOURCE"
  recurrence_type    = "CRON"
  recurrence_details = var.renewal_schedule
  state              = "ACTIVE"
  freeform_tags      = local.tags

  resources {
    id = oci_functions_function.renewer.id

    parameters {
      parameter_type = "BODY"
      value          = [local.schedule_body]
    }
  }
}

resource "oci_events_rule" "config_changed" {
  compartment_id = var.compartment_ocid
  display_name   = "${var.name_prefix}-renewer-config-changed"
  description    = "Runs the ACME renewer when its configuration object changes."
  is_enabled     = true
  condition = jsonencode({
    eventType = [
      "com.oraclecloud.objectstorage.createobject",
      "com.oraclecloud.objectstorage.updateobject",
    ]
    data = {
      resourceName      = local.config_object_name
      additionalDetails = { bucketName = local.state_bucket_name }
    }
  })
  freeform_tags = local.tags

  actions {
    actions {
      action_type = "FAAS"
      is_enabled  = true
      function_id = oci_functions_function.renewer.id
      description = "Renew what the new configuration asks for."
    }
  }
}
