# The two documents this stack writes: the renewer's configuration (docs/configuration.md) and
# the IAM policy statements. They are built here from variables and from the few locals that
# main.tf derives from resources (vault_id, key_id, schedule_id, topic_id), and nothing else,
# so that tests/terraform can evaluate this file with the example inputs, validate the
# configuration with the renewer's own validator and load the statements into the emulator's
# policy engine. Keep the expressions plain: literals, for expressions, conditionals, concat,
# distinct, flatten, coalesce, length, merge.

locals {
  challenge_bucket_name      = "${var.name_prefix}-challenges"
  state_bucket_name          = "${var.name_prefix}-state"
  config_object_name         = "config/renewer.json"
  renewer_dynamic_group      = "${var.name_prefix}-renewer-dg"
  token_server_dynamic_group = "${var.name_prefix}-token-server-dg"
  token_backend              = var.challenge_mode == "token_backend"
  token_backend_set          = "${var.name_prefix}-tokens"
  vault_compartment_id       = var.existing_vault == null ? var.compartment_ocid : coalesce(var.existing_vault.compartment_id, var.compartment_ocid)
  lb_compartment_ids         = distinct([for key, lb in var.load_balancers : coalesce(lb.compartment_id, var.compartment_ocid)])
  uses_certificates_service  = length(flatten([for c in var.certificates : [for t in c.targets : t.certificate_id if t.certificate_id != null]])) > 0

  # ------------------------------------------------------------------ the renewer's configuration
  renewer_config = {
    # The single CA (directoryUrl + eab) or the CA list (cas), never both: the renewer refuses
    # a document with both keys, even null (renewer/settings.py). One-element for expressions
    # drop a key, because a conditional cannot return objects of different shapes.
    acme = merge(
      { for key, url in { directoryUrl = var.acme_directory_url } : key => url if length(var.acme_cas) == 0 },
      {
        for key, eab in {
          eab = var.acme_eab == null ? null : {
            keyId           = var.acme_eab.key_id
            hmacKeySecretId = var.acme_eab.hmac_key_secret_id
          }
        } : key => eab if length(var.acme_cas) == 0
      },
      {
        for key, cas in {
          cas = [
            for ca in var.acme_cas : {
              directoryUrl = ca.directory_url
              eab = ca.eab_key_id == null ? null : {
                keyId           = ca.eab_key_id
                hmacKeySecretId = ca.eab_hmac_key_secret_id
              }
              profile        = ca.profile
              preferredChain = ca.preferred_chain
            }
          ]
        } : key => cas if length(var.acme_cas) > 0
      },
      {
        contact              = var.acme_contact_emails
        termsOfServiceAgreed = var.acme_terms_of_service_agreed
        selfCheck            = var.acme_self_check
      },
    )
    oci = {
      compartmentId   = var.compartment_ocid
      vaultId         = local.vault_id
      keyId           = local.key_id
      challengeBucket = local.challenge_bucket_name
      stateBucket     = local.state_bucket_name
      namespace       = null
      namePrefix      = var.name_prefix
      # Token-backend mode: the renewer puts the challenge route on each load balancer's
      # port-80 listener itself (renewer/adapters/oci_challenge_route.py), whatever its shape.
      challengeBackendSet = local.token_backend ? local.token_backend_set : null
    }
    renewal = {
      retention           = var.renewal.retention
      keepPreviousBundles = var.renewal.keep_previous_bundles
      verifyTls           = var.renewal.verify_tls
      orphanGraceDays     = var.renewal.orphan_grace_days
      revokeOnRemoval     = var.renewal.revoke_on_removal
    }
    # Metrics only with a namespace (a one-element for expression, because a conditional
    # cannot return {} or an object with attributes); notices always go to the stack's topic.
    operations = merge(
      {
        for key, metrics in { metrics = { enabled = true, namespace = var.metrics_namespace, compartmentId = var.compartment_ocid } } :
        key => metrics if var.metrics_namespace != null
      },
      {
        notifications = {
          topicId           = local.topic_id
          onSuccess         = var.notify_on_success
          expiryWarningDays = var.expiry_alarm_days
        }
        journal = {
          enabled       = true
          retentionDays = var.journal_retention_days
        }
      },
    )
    certificates = [
      for c in var.certificates : {
        name           = c.name
        dnsNames       = c.dns_names
        keyType        = c.key_type
        profile        = c.profile
        preferredChain = c.preferred_chain
        reuseKey       = c.reuse_key
        # One object shape for every challenge (the renewer accepts {"type": ...} for all):
        # a conditional cannot return a string on one side and an object on the other.
        challenge = {
          type   = c.challenge
          zoneId = c.challenge == "dns-01" ? c.dns_zone_id : null
        }
        # Two for expressions rather than one conditional: the two target shapes are
        # different object types, which a conditional cannot return.
        targets = concat(
          [
            for t in c.targets : {
              loadBalancerId = var.load_balancers[t.load_balancer].load_balancer_id
              listeners      = t.listeners
            } if t.certificate_id == null
          ],
          [for t in c.targets : { certificateId = t.certificate_id } if t.certificate_id != null],
        )
      }
    ]
  }

  # ------------------------------------------------------------------ dns-persist-01 records
  # One _validation-persist TXT record per validated domain (a name and its wildcard share
  # one, with policy=wildcard), for the certificates whose zone is in OCI DNS, once the
  # account URL is known (draft-ietf-acme-dns-persist; renewer/dns_names.py builds the same).
  persist_certificates = [for c in var.certificates : c if c.challenge == "dns-persist-01" && c.dns_zone_id != null]
  persist_domains      = distinct(flatten([for c in local.persist_certificates : [for n in c.dns_names : replace(lower(n), "*.", "")]]))
  persist_wildcards    = distinct(flatten([for c in local.persist_certificates : [for n in c.dns_names : replace(lower(n), "*.", "") if startswith(n, "*.")]]))
  dns_persist_records = {
    for d in local.persist_domains : "_validation-persist.${d}" => {
      zone_id = one(distinct([for c in local.persist_certificates : c.dns_zone_id if contains([for n in c.dns_names : replace(lower(n), "*.", "")], d)]))
      value   = "${var.acme_issuer_domain}; accounturi=${var.acme_account_uri}${contains(local.persist_wildcards, d) ? "; policy=wildcard" : ""}"
    } if var.acme_account_uri != null
  }

  # The zones the renewer writes dns-01 records into.
  dns01_zone_ids = distinct([for c in var.certificates : c.dns_zone_id if c.challenge == "dns-01"])

  # ------------------------------------------------------------------ IAM policy statements
  # Each statement is needed by a call the renewer or the token server makes; README.md says
  # which. tests/terraform proves the renewer's and the token server's statements in the
  # emulator: a renewal passes with exactly them and fails when any one is removed.
  renewer_statements = concat(
    [
      "Allow dynamic-group ${local.renewer_dynamic_group} to manage objects in compartment id ${var.compartment_ocid} where any {target.bucket.name = '${local.challenge_bucket_name}', target.bucket.name = '${local.state_bucket_name}'}",
      "Allow dynamic-group ${local.renewer_dynamic_group} to manage secret-family in compartment id ${var.compartment_ocid}",
      "Allow dynamic-group ${local.renewer_dynamic_group} to use vaults in compartment id ${local.vault_compartment_id} where target.vault.id = '${local.vault_id}'",
      "Allow dynamic-group ${local.renewer_dynamic_group} to use keys in compartment id ${local.vault_compartment_id} where target.key.id = '${local.key_id}'",
    ],
    [for id in local.lb_compartment_ids : "Allow dynamic-group ${local.renewer_dynamic_group} to use load-balancers in compartment id ${id}"],
    local.uses_certificates_service ? ["Allow dynamic-group ${local.renewer_dynamic_group} to manage leaf-certificate-family in compartment id ${var.compartment_ocid}"] : [],
    var.metrics_namespace == null ? [] : ["Allow dynamic-group ${local.renewer_dynamic_group} to use metrics in compartment id ${var.compartment_ocid} where target.metrics.namespace = '${var.metrics_namespace}'"],
    ["Allow dynamic-group ${local.renewer_dynamic_group} to use ons-topics in compartment id ${var.compartment_ocid}"],
    # dns-01: add and remove _acme-challenge TXT records (PatchDomainRecords, GetDomainRecords:
    # DNS_RECORD_UPDATE, DNS_RECORD_READ), in the zones dns-01 certificates name and no other.
    [for z in local.dns01_zone_ids : "Allow dynamic-group ${local.renewer_dynamic_group} to use dns-records in compartment id ${coalesce(var.dns_zone_compartment_ocid, var.compartment_ocid)} where target.dns-zone.id = '${z}'"],
  )

  # Fan-out (renewer/fanout.py): the function reads itself (GetFunction: its invoke endpoint and
  # detached timeout) and invokes itself detached. OCI's Functions policy reference supports the
  # general variables only (no target.function.id), so these are scoped to the function's
  # compartment; tests/terraform/test_fan_out_policies.py proves each is needed.
  fan_out_statements = var.fan_out ? [
    "Allow dynamic-group ${local.renewer_dynamic_group} to read fn-function in compartment id ${var.compartment_ocid}",
    "Allow dynamic-group ${local.renewer_dynamic_group} to use fn-invocation in compartment id ${var.compartment_ocid}",
  ] : []

  token_server_statements = local.token_backend ? [
    "Allow dynamic-group ${local.token_server_dynamic_group} to read objects in compartment id ${var.compartment_ocid} where target.bucket.name = '${local.challenge_bucket_name}'",
  ] : []

  # Statements for OCI services acting on the stack's behalf (not provable in the emulator,
  # which has no such services): the schedule and the Events rule invoke the function, OCI
  # Functions attaches the function to its subnets, Object Storage encrypts the buckets.
  service_statements = [
    "Allow any-user to manage functions-family in compartment id ${var.compartment_ocid} where all {request.principal.type = 'resourceschedule', request.principal.id = '${local.schedule_id}'}",
    "Allow service cloudEvents to use functions-family in compartment id ${var.compartment_ocid}",
    "Allow service faas to use virtual-network-family in compartment id ${coalesce(var.network_compartment_ocid, var.compartment_ocid)}",
    "Allow service objectstorage-${var.region} to use keys in compartment id ${local.vault_compartment_id} where target.key.id = '${local.key_id}'",
    # Object lifecycle rules (storage.tf) run as the Object Storage service: it deletes the
    # state bucket's previous versions and stale challenge objects, in those two buckets only.
    "Allow service objectstorage-${var.region} to manage object-family in compartment id ${var.compartment_ocid} where any {target.bucket.name = '${local.state_bucket_name}', target.bucket.name = '${local.challenge_bucket_name}'}",
    # The function's image is pulled from a private OCIR repository by the Functions service
    # (Oracle's "Creating Policies to Control Access to Network and Function-Related Resources":
    # created in the root compartment, as documented; it grants reading images, nothing else).
    "Allow service faas to read repos in tenancy",
  ]
}
