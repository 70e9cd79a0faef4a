# Telling people before anything breaks (Let's Encrypt no longer mails before expiry): a
# topic with e-mail subscriptions, and alarms on failed invocations, on days to expiry and on
# repeated renewal failures. Metric names follow the renewer's Monitoring adapter.

resource "oci_ons_notification_topic" "this" {
  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-renewer"
  description    = "Alarms and failure notices of the ACME renewer (${var.name_prefix})."
  freeform_tags  = local.tags
}

resource "oci_ons_subscription" "email" {
  for_each = toset(var.notification_emails)

  compartment_id = var.compartment_ocid
  topic_id       = oci_ons_notification_topic.this.id
  protocol       = "EMAIL"
  endpoint       = each.value
  freeform_tags  = local.tags
}

resource "oci_monitoring_alarm" "function_errors" {
  compartment_id        = var.compartment_ocid
  display_name          = "${var.name_prefix}-renewer-invocation-failed"
  is_enabled            = true
  metric_compartment_id = var.compartment_ocid
  namespace             = "oci_faas"
  # Any failed certificate makes the invocation fail (502), so this fires on every failed run.
  query                        = "FunctionResponseCount[1h]{resourceId = \"${oci_functions_function.renewer.id}\", responseType = \"Error\"}.sum() > 0"
  severity                     = "CRITICAL"
  body                         = "The ACME renewer invocation failed. Its report names the certificates and reasons: see the log ${oci_logging_log.invocations.display_name} or run the status action."
  message_format               = "ONS_OPTIMIZED"
  pending_duration             = "PT1M"
  repeat_notification_duration = "PT24H"
  destinations                 = [oci_ons_notification_topic.this.id]
  freeform_tags                = local.tags
}

# Alarms on the renewer's own metrics (renewer/operations/metrics.py), when metrics are posted.
# Windows are one day because datapoints come from the scheduled runs only (twice a day by
# default): a one-hour window would be empty between runs. "silent" fires when no
# days_to_expiry arrived for 36 h (three runs): the schedule or the function is broken before
# it can post, and nothing is being renewed.
locals {
  metric_alarms = var.metrics_namespace == null ? {} : {
    certificate-expiring = {
      query    = "days_to_expiry[1d].min() < ${var.expiry_alarm_days}"
      severity = "CRITICAL"
      body     = "A certificate managed by the ACME renewer expires in less than ${var.expiry_alarm_days} days and has not been renewed."
    }
    renewal-keeps-failing = {
      query    = "consecutive_failures[1d].max() >= 3"
      severity = "WARNING"
      body     = "Renewing a certificate managed by the ACME renewer failed three times in a row."
    }
    renewer-silent = {
      query    = "days_to_expiry[1d].groupBy(certificateName).absent(36h)"
      severity = "CRITICAL"
      body     = "The ACME renewer has posted no days_to_expiry for 36 hours: the schedule, the function or its access to Monitoring is broken, and nothing is being renewed."
    }
  }
}

resource "oci_monitoring_alarm" "metrics" {
  for_each = local.metric_alarms

  compartment_id                                = var.compartment_ocid
  display_name                                  = "${var.name_prefix}-${each.key}"
  is_enabled                                    = true
  metric_compartment_id                         = var.compartment_ocid
  namespace                                     = var.metrics_namespace
  query                                         = each.value.query
  severity                                      = each.value.severity
  body                                          = each.value.body
  message_format                                = "ONS_OPTIMIZED"
  pending_duration                              = "PT5M"
  repeat_notification_duration                  = "PT24H"
  is_notifications_per_metric_dimension_enabled = true
  destinations                                  = [oci_ons_notification_topic.this.id]
  freeform_tags                                 = local.tags
}
