# Two private buckets: challenges (read by the token server, or through a read-only
# pre-authenticated request in redirect mode) and state (leases, per-certificate state, the
# configuration object; only the renewer reads it). They must differ: whoever can read the
# challenge bucket must not read state.

resource "oci_objectstorage_bucket" "challenges" {
  # checkov:skip=CKV_OCI_8: challenge tokens live for minutes and are deleted after each order; versioning would keep every deleted token (public by design) as a previous version forever.
  compartment_id        = var.compartment_ocid
  namespace             = local.namespace
  name                  = local.challenge_bucket_name
  access_type           = "NoPublicAccess"
  storage_tier          = "Standard"
  versioning            = "Disabled"
  object_events_enabled = true
  kms_key_id            = local.key_id
  freeform_tags         = local.tags

  # Object Storage must be allowed to use the key before a bucket can name it.
  depends_on = [oci_identity_policy.services]
}

resource "oci_objectstorage_bucket" "state" {
  compartment_id = var.compartment_ocid
  namespace      = local.namespace
  name           = local.state_bucket_name
  access_type    = "NoPublicAccess"
  storage_tier   = "Standard"
  # Previous versions of the configuration object stay recoverable.
  versioning = "Enabled"
  # The Events rule (schedule.tf) reacts to the configuration object being written.
  object_events_enabled = true
  kms_key_id            = local.key_id
  freeform_tags         = local.tags

  # Object Storage must be allowed to use the key before a bucket can name it.
  depends_on = [oci_identity_policy.services]
}

# The renewer's configuration document (documents.tf), validated by the renewer on every run.
# Function configuration is limited to 4 KB, so the function gets only its location
# (RENEWER_CONFIG_OBJECT); writing it here also fires the Events rule, so a newly added
# certificate is issued at once instead of at the next scheduled run.
#
# Written last (depends_on): the run its Events rule starts must meet a working path — the
# rule itself, the function, every policy it and the token server act under, the token
# server running behind its backend set, and the challenge routing the stack manages — or
# the first run would fail its self-check (which the renewer retries within the run and
# soon after; README: the first run).
resource "oci_objectstorage_object" "config" {
  namespace    = local.namespace
  bucket       = oci_objectstorage_bucket.state.name
  object       = local.config_object_name
  content      = jsonencode(local.renewer_config)
  content_type = "application/json"

  lifecycle {
    precondition {
      condition     = length(local.unknown_load_balancer_keys) == 0
      error_message = "Certificate targets name load balancers that load_balancers does not define: ${join(", ", local.unknown_load_balancer_keys)}. Add them to load_balancers or fix the key."
    }
    precondition {
      condition     = length(var.acme_cas) == 0 || var.acme_eab == null
      error_message = "acme_eab cannot be combined with acme_cas: give the CA its EAB in its acme_cas entry (eab_key_id, eab_hmac_key_secret_id) and set acme_eab = null."
    }
    precondition {
      condition     = !local.token_backend || var.token_server != null
      error_message = "The challenge_mode \"token_backend\" needs token_server (image and subnet of the token-server container); or set challenge_mode = \"redirect\"."
    }
  }

  depends_on = [
    oci_events_rule.config_changed,
    oci_functions_function.renewer,
    oci_identity_policy.renewer,
    oci_identity_policy.token_server,
    oci_identity_policy.services,
    oci_container_instances_container_instance.token_server,
    oci_load_balancer_backend.tokens,
    oci_load_balancer_load_balancer_routing_policy.challenge,
    oci_load_balancer_rule_set.challenge_redirect,
    oci_load_balancer_listener.http,
  ]
}

# Redirect mode: a read-only pre-authenticated request on the challenge bucket. Any object may
# be read by name (the http-01 key authorizations are public by design); listing is denied.
resource "oci_objectstorage_preauthrequest" "challenges" {
  count = local.token_backend ? 0 : 1

  namespace             = local.namespace
  bucket                = oci_objectstorage_bucket.challenges.name
  name                  = "${var.name_prefix}-challenge-read"
  access_type           = "AnyObjectRead"
  bucket_listing_action = "Deny"
  time_expires          = var.challenge_par_expires
}

# Nothing grows forever. The state bucket is versioned, so every lease, state, journal and
# notice write keeps the object it replaced (and every delete leaves a delete marker): previous
# versions are deleted after local.state_previous_version_days. Challenge objects are deleted by
# the run that wrote them; one a killed run left behind is deleted by the next run's sweep, and
# by this rule after a day whatever happens (an order's tokens are useless after minutes).
# Object Storage applies the rules itself, with the service statement in documents.tf.
locals {
  state_previous_version_days = 30 # the configuration object's history stays this long
  stale_challenge_days        = 1  # the shortest age a lifecycle rule takes
}

resource "oci_objectstorage_object_lifecycle_policy" "state" {
  namespace = local.namespace
  bucket    = oci_objectstorage_bucket.state.name

  rules {
    name        = "delete-previous-versions"
    action      = "DELETE"
    target      = "previous-object-versions"
    is_enabled  = true
    time_amount = local.state_previous_version_days
    time_unit   = "DAYS"
  }

  depends_on = [oci_identity_policy.services]
}

resource "oci_objectstorage_object_lifecycle_policy" "challenges" {
  namespace = local.namespace
  bucket    = oci_objectstorage_bucket.challenges.name

  rules {
    name        = "delete-stale-challenges"
    action      = "DELETE"
    target      = "objects"
    is_enabled  = true
    time_amount = local.stale_challenge_days
    time_unit   = "DAYS"

    object_name_filter {
      inclusion_prefixes = [".well-known/acme-challenge/"]
    }
  }

  depends_on = [oci_identity_policy.services]
}
