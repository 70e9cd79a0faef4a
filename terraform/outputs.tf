# What an operator needs after apply. Optional resources come out as null (one(...)), never
# as joined strings.

output "function_id" {
  description = "OCID of the renewer function."
  value       = oci_functions_function.renewer.id
}

output "fn_invoke_command" {
  description = "Ready-to-paste Fn CLI command (with an OCI context for this region and compartment) running a plan; use {\"action\": \"renew\"} to renew now."
  value       = "echo -n '{\"action\": \"plan\"}' | fn invoke ${local.function_invoke_ref}"
}

output "oci_invoke_command" {
  description = "Ready-to-paste OCI CLI command printing the function's status report; change the body to {\"action\": \"renew\"} or {\"action\": \"plan\"}."
  value       = "oci fn function invoke --function-id ${oci_functions_function.renewer.id} --file - --body '{\"action\": \"status\"}'"
}

output "logs_command" {
  description = "Ready-to-paste OCI CLI command printing the function's log lines of the last 24 hours, newest first (GNU date)."
  value       = "oci logging-search search-logs --search-query 'search \"${var.compartment_ocid}/${oci_logging_log_group.this.id}/${oci_logging_log.invocations.id}\" | sort by datetime desc' --time-start $(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ) --time-end $(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

output "challenge_bucket" {
  description = "Name of the private bucket holding http-01 key authorizations."
  value       = oci_objectstorage_bucket.challenges.name
}

output "state_bucket" {
  description = "Name of the private bucket holding leases, state and the configuration object."
  value       = oci_objectstorage_bucket.state.name
}

output "config_object" {
  description = "Where the renewer's configuration document is (<bucket>/<object>, the function's RENEWER_CONFIG_OBJECT)."
  value       = "${oci_objectstorage_bucket.state.name}/${oci_objectstorage_object.config.object}"
}

output "vault_id" {
  description = "OCID of the vault holding the certificate secrets."
  value       = local.vault_id
}

output "certificate_secret_names" {
  description = "Vault secret of each certificate, by certificate name. The renewer creates each on its first issuance."
  value       = { for c in var.certificates : c.name => "${var.name_prefix}-${c.name}" }
}

data "oci_vault_secrets" "certificates" {
  for_each = toset([for c in var.certificates : c.name])

  compartment_id = var.compartment_ocid
  name           = "${var.name_prefix}-${each.key}"
  vault_id       = local.vault_id
}

output "certificate_secret_ids" {
  description = "OCID of each certificate's Vault secret, by certificate name; null until the renewer issued it (run terraform apply, or the command in secret_lookup_commands, again afterwards)."
  value       = { for name, found in data.oci_vault_secrets.certificates : name => try(found.secrets[0].id, null) }
}

output "secret_lookup_commands" {
  description = "OCI CLI command printing each certificate's secret OCID."
  value = {
    for c in var.certificates : c.name => "oci vault secret list --compartment-id ${var.compartment_ocid} --vault-id ${local.vault_id} --name ${var.name_prefix}-${c.name} --query 'data[0].id' --raw-output"
  }
}

output "notification_topic_id" {
  description = "OCID of the notification topic (alarms and the renewer's notices)."
  value       = oci_ons_notification_topic.this.id
}

output "token_server_private_ip" {
  description = "Private IP of the token-server container (token_backend mode), the backend of every challenge backend set; null in redirect mode."
  value       = one(oci_container_instances_container_instance.token_server[*].vnics[0].private_ip)
}

output "challenge_routing" {
  description = "Per load balancer: the routing policy (token_backend) or rule set (redirect) to attach to its port-80 listener if the stack does not manage that listener."
  value = {
    for key, lb in var.load_balancers : key => {
      load_balancer_id    = lb.load_balancer_id
      routing_policy_name = local.token_backend ? "${local.lb_name_prefix}_challenge" : null
      rule_set_name       = local.token_backend ? null : "${local.lb_name_prefix}_challenge_redirect"
      listener_managed    = lb.http_listener != null
    }
  }
}

output "policy_statements" {
  description = "Every IAM statement the stack wrote, for review."
  value = {
    renewer      = local.renewer_statements
    token_server = local.token_server_statements
    services     = local.service_statements
  }
}

output "dns_persist_records" {
  description = "The dns-persist-01 TXT records this stack writes (name => value); empty until acme_account_uri is set."
  value       = { for name, record in local.dns_persist_records : name => record.value }
}
