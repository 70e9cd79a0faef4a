# Inputs. Optional inputs default to null (never to sentinel strings such as "none"), and every
# format we know is validated here, so a mistake fails at plan time with a message that says
# what to write instead. Each validation looks at its own variable only (Terraform 1.5, which
# OCI Resource Manager runs); checks across variables are preconditions in main.tf.

# ---------------------------------------------------------------------------- where

variable "tenancy_ocid" {
  description = "OCID of the tenancy. Dynamic groups live in the tenancy's root compartment (Resource Manager fills this in)."
  type        = string

  validation {
    condition     = can(regex("^ocid1\\.tenancy\\.[a-z0-9-]+\\.[a-z0-9-]*\\.[a-z0-9]+$", var.tenancy_ocid))
    error_message = "The tenancy_ocid must be a tenancy OCID such as ocid1.tenancy.oc1..aaaa... (Profile > Tenancy in the Console)."
  }
}

variable "region" {
  description = "Region identifier of the stack, e.g. eu-frankfurt-1. Used in the pre-authenticated request URL (redirect mode) and in the invoke commands (Resource Manager fills this in)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2,}-[a-z]+-[0-9]+$", var.region))
    error_message = "The region must be a region identifier such as us-phoenix-1 or eu-frankfurt-1, not a region key (PHX) or display name."
  }
}

variable "compartment_ocid" {
  description = "OCID of the compartment holding everything this stack creates: function, buckets, secrets, container instance, topic, alarms. The policies grant access in this compartment only."
  type        = string

  validation {
    condition     = can(regex("^ocid1\\.(compartment|tenancy)\\.[a-z0-9-]+\\.[a-z0-9-]*\\.[a-z0-9]+$", var.compartment_ocid))
    error_message = "The compartment_ocid must be a compartment OCID (ocid1.compartment.oc1..aaaa...); the root compartment's OCID is the tenancy OCID."
  }
}

variable "name_prefix" {
  description = "Prefix of every name this stack and the renewer create (buckets, dynamic groups, policies, Vault secrets <prefix>-<certificate>, LB bundles). The renewer only modifies or deletes names carrying it."
  type        = string
  default     = "acme"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}$", var.name_prefix))
    error_message = "The name_prefix must be 1-15 lower-case letters, digits and hyphens starting with a letter, e.g. \"acme\" or \"shop-tls\"."
  }
}

variable "freeform_tags" {
  description = "Extra freeform tags for every resource this stack creates. The tag managed-by = oci-acme-renewer is always added (the renewer tags what it creates the same way)."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.freeform_tags), "managed-by")
    error_message = "The freeform_tags must not set \"managed-by\": the stack sets it to oci-acme-renewer, which the renewer uses to recognise its own resources."
  }
}

# ---------------------------------------------------------------------------- ACME

variable "acme_directory_url" {
  description = "ACME directory URL. Let's Encrypt staging by default (untrusted certificates, generous rate limits); switch to https://acme-v02.api.letsencrypt.org/directory for production once a staging run succeeded."
  type        = string
  default     = "https://acme-staging-v02.api.letsencrypt.org/directory"

  validation {
    condition     = can(regex("^https://[^\\s/]+(/\\S*)?$", var.acme_directory_url))
    error_message = "The acme_directory_url must be an https:// ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory."
  }
}

variable "acme_contact_emails" {
  description = "Contact e-mail addresses registered with the ACME account (optional; Let's Encrypt no longer sends expiry mail, the alarms of this stack do)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.acme_contact_emails : can(regex("^[^@\\s:]+@[^@\\s:]+\\.[^@\\s:]+$", e))])
    error_message = "Each acme_contact_emails entry must be a plain e-mail address such as ops@example.com (no \"mailto:\", no display name)."
  }
}

variable "acme_terms_of_service_agreed" {
  description = "Whether you agree to the ACME CA's terms of service (Let's Encrypt: its Subscriber Agreement). Registration fails at a CA with terms when false."
  type        = bool
  default     = true
}

variable "acme_eab" {
  description = "External account binding for CAs that require it (ZeroSSL, Google Trust Services, ...): the EAB key id and the OCID of a Vault secret in compartment_ocid holding the HMAC key. Null for Let's Encrypt."
  type = object({
    key_id             = string
    hmac_key_secret_id = string
  })
  default = null

  validation {
    condition     = var.acme_eab == null || can(regex("^ocid1\\.vaultsecret\\.", var.acme_eab.hmac_key_secret_id))
    error_message = "The acme_eab.hmac_key_secret_id must be the OCID of a Vault secret (ocid1.vaultsecret...) holding the HMAC key; never put the key itself here."
  }
}

variable "acme_cas" {
  description = <<-EOT
    The CAs to try, in order (issue 17, docs/ca-fallback.md): the first is used while it is healthy, the next only when the first fails on its side (unreachable, 5xx, rateLimited, ...). Each: directory_url (https://), optionally eab_key_id with eab_hmac_key_secret_id (the OCID of a Vault secret holding the HMAC key; both or neither), profile, preferred_chain. Empty (the default): the single CA of acme_directory_url and acme_eab. When set, acme_directory_url is not used and acme_eab must be null (give each CA its own EAB here).
  EOT
  type = list(object({
    directory_url          = string
    eab_key_id             = optional(string)
    eab_hmac_key_secret_id = optional(string)
    profile                = optional(string)
    preferred_chain        = optional(string)
  }))
  default = []

  validation {
    condition     = length(var.acme_cas) <= 5
    error_message = "The acme_cas list holds at most 5 CAs (the first and a few fallbacks; more only delay a failing run)."
  }
  validation {
    condition     = alltrue([for ca in var.acme_cas : can(regex("^https://[^\\s/]+(/\\S*)?$", ca.directory_url))])
    error_message = "Each acme_cas entry's directory_url must be an https:// ACME directory URL, e.g. https://acme.zerossl.com/v2/DV90."
  }
  validation {
    condition     = length(distinct([for ca in var.acme_cas : ca.directory_url])) == length(var.acme_cas)
    error_message = "The acme_cas entries must name different CAs: list each directory_url once."
  }
  validation {
    condition     = alltrue([for ca in var.acme_cas : (ca.eab_key_id == null) == (ca.eab_hmac_key_secret_id == null)])
    error_message = "An acme_cas entry with EAB needs both eab_key_id and eab_hmac_key_secret_id (or neither, for a CA without EAB such as Let's Encrypt)."
  }
  validation {
    condition     = alltrue([for ca in var.acme_cas : ca.eab_hmac_key_secret_id == null || can(regex("^ocid1\\.vaultsecret\\.", ca.eab_hmac_key_secret_id))])
    error_message = "Each acme_cas eab_hmac_key_secret_id must be the OCID of a Vault secret (ocid1.vaultsecret...) holding the HMAC key; never put the key itself here."
  }
}

variable "acme_self_check" {
  description = "Whether the renewer fetches each token URL through the public path before asking the CA to validate."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------- certificates

variable "certificates" {
  description = <<-EOT
    Certificates to keep valid. name: 1-40 lower-case letters, digits, hyphens (the Vault secret is <name_prefix>-<name>).
    dns_names: host names (no IP addresses); wildcards (*.example.com) only with a DNS challenge. key_type: auto (default: ECDSA P-256 where every target's cipher suite serves it, else RSA 2048), ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096.
    challenge: http-01 (default: the port-80 path on the load balancer), dns-persist-01 (one _validation-persist TXT record, written once: see acme_account_uri) or dns-01 (the renewer writes _acme-challenge TXT records into dns_zone_id at every renewal).
    dns_zone_id: the OCI DNS zone (ocid1.dns-zone...) holding the names; required for dns-01; for dns-persist-01 the stack writes the record there (leave null to create it elsewhere).
    profile: an ACME profile (classic, tlsserver, shortlived at Let's Encrypt) or null for the CA default. preferred_chain: root common name or null.
    targets: each either { load_balancer = <key in load_balancers>, listeners = [HTTPS listener names] } or { certificate_id = <OCI Certificates-service certificate OCID> }.
  EOT
  type = list(object({
    name            = string
    dns_names       = list(string)
    key_type        = optional(string, "auto")
    profile         = optional(string)
    preferred_chain = optional(string)
    reuse_key       = optional(bool, false)
    challenge       = optional(string, "http-01")
    dns_zone_id     = optional(string)
    targets = list(object({
      load_balancer  = optional(string)
      listeners      = optional(list(string))
      certificate_id = optional(string)
    }))
  }))

  validation {
    condition     = length(var.certificates) > 0
    error_message = "List at least one certificate in certificates."
  }
  validation {
    condition     = alltrue([for c in var.certificates : can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", c.name))])
    error_message = "Each certificates[*].name must be 1-40 lower-case letters, digits and hyphens, starting and ending with a letter or digit (e.g. \"shop-www\")."
  }
  validation {
    condition     = length(distinct([for c in var.certificates : c.name])) == length(var.certificates)
    error_message = "The certificates[*].name values must be unique: each names its own Vault secret."
  }
  validation {
    condition = alltrue(flatten([for c in var.certificates : [
      for n in c.dns_names : can(regex("^(\\*\\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", lower(n)))
    ]]))
    error_message = "Each certificates[*].dns_names entry must be a DNS host name such as www.example.com (or *.example.com with a DNS challenge); IP addresses are not supported."
  }
  validation {
    condition     = alltrue([for c in var.certificates : contains(["http-01", "dns-persist-01", "dns-01"], c.challenge)])
    error_message = "Each certificates[*].challenge must be one of http-01, dns-persist-01, dns-01."
  }
  validation {
    condition = alltrue(flatten([for c in var.certificates : [
      for n in c.dns_names : c.challenge != "http-01" || !startswith(n, "*.")
    ]]))
    error_message = "http-01 cannot validate wildcards (*.example.com): set that certificate's challenge to dns-persist-01 or dns-01, or list each host name."
  }
  validation {
    condition     = alltrue([for c in var.certificates : c.dns_zone_id == null ? c.challenge != "dns-01" : (c.challenge != "http-01" && can(regex("^ocid1\\.dns-zone\\.", c.dns_zone_id)))])
    error_message = "A dns-01 certificate needs dns_zone_id, the OCID of its OCI DNS zone (ocid1.dns-zone...); dns_zone_id is for DNS challenges only."
  }
  validation {
    condition     = alltrue([for c in var.certificates : length(c.dns_names) >= 1 && length(c.dns_names) <= 100 && length(distinct([for n in c.dns_names : lower(n)])) == length(c.dns_names)])
    error_message = "Each certificate needs 1-100 dns_names, each listed once."
  }
  validation {
    condition     = alltrue([for c in var.certificates : contains(["auto", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"], c.key_type)])
    error_message = "Each certificates[*].key_type must be one of auto, ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096."
  }
  validation {
    condition     = alltrue([for c in var.certificates : c.profile == null || can(regex("^[a-z0-9][a-z0-9_.-]{0,63}$", c.profile))])
    error_message = "Each certificates[*].profile must be null (the CA's default) or an ACME profile name such as \"tlsserver\"."
  }
  validation {
    condition = alltrue(flatten([for c in var.certificates : [length(c.targets) > 0, [
      for t in c.targets : (t.certificate_id == null) != (t.load_balancer == null && t.listeners == null)
    ]]]))
    error_message = "Each certificate needs at least one target, and each target is either { load_balancer, listeners } or { certificate_id }, never both."
  }
  validation {
    condition = alltrue(flatten([for c in var.certificates : [
      for t in c.targets : t.certificate_id == null ? (t.load_balancer != null && try(length(t.listeners) > 0, false)) : can(regex("^ocid1\\.certificate\\.", t.certificate_id))
    ]]))
    error_message = "A load-balancer target needs load_balancer (a key of load_balancers) and at least one HTTPS listener name; a certificate_id must be an OCI Certificates-service OCID (ocid1.certificate...)."
  }
}

variable "renewal" {
  description = "Renewal knobs: retention = certificate versions kept in Vault (2-27); keep_previous_bundles = superseded LB bundles kept for rollback (0-10); verify_tls = TLS handshake with each listener after a switch; orphan_grace_days = days after a certificate leaves the configuration before its Vault secret is scheduled for deletion and its unused LB bundles are deleted (1-365); revoke_on_removal = also revoke, with reason cessationOfOperation, what a removed certificate leaves behind (off by default)."
  type = object({
    retention             = optional(number, 10)
    keep_previous_bundles = optional(number, 1)
    verify_tls            = optional(bool, true)
    orphan_grace_days     = optional(number, 30)
    revoke_on_removal     = optional(bool, false)
  })
  default = {}

  validation {
    condition     = var.renewal.retention >= 2 && var.renewal.retention <= 27 && floor(var.renewal.retention) == var.renewal.retention
    error_message = "The renewal.retention must be a whole number from 2 to 27 (Vault keeps at most 30 secret versions in use, and a renewal needs 3 free)."
  }
  validation {
    condition     = var.renewal.keep_previous_bundles >= 0 && var.renewal.keep_previous_bundles <= 10 && floor(var.renewal.keep_previous_bundles) == var.renewal.keep_previous_bundles
    error_message = "The renewal.keep_previous_bundles must be a whole number from 0 to 10."
  }
  validation {
    condition     = var.renewal.orphan_grace_days >= 1 && var.renewal.orphan_grace_days <= 365 && floor(var.renewal.orphan_grace_days) == var.renewal.orphan_grace_days
    error_message = "The renewal.orphan_grace_days must be a whole number from 1 to 365 (days between a certificate leaving the configuration and its retirement)."
  }
}

# ---------------------------------------------------------------------------- load balancers and the challenge path

variable "load_balancers" {
  description = <<-EOT
    The existing load balancers, by a short key used in certificates[*].targets. For each, the stack adds the challenge path on its port-80 listener:
    load_balancer_id: its OCID. compartment_id: its compartment (null = compartment_ocid); the renewer gets "use load-balancers" there.
    http_listener: null = the stack creates the routing policy (token_backend) or rule set (redirect) and you attach it to your port-80 listener yourself (README: adopting a port-80 listener);
    otherwise the stack manages the port-80 listener { name, default_backend_set_name, rule_set_names, hostname_names } (import it first if it exists).
  EOT
  type = map(object({
    load_balancer_id = string
    compartment_id   = optional(string)
    http_listener = optional(object({
      name                     = optional(string, "http")
      port                     = optional(number, 80)
      default_backend_set_name = string
      rule_set_names           = optional(list(string), [])
      hostname_names           = optional(list(string), [])
    }))
  }))

  validation {
    condition     = alltrue([for k, lb in var.load_balancers : can(regex("^ocid1\\.loadbalancer\\.", lb.load_balancer_id))])
    error_message = "Each load_balancers[*].load_balancer_id must be a load balancer OCID (ocid1.loadbalancer...); network load balancers have no HTTP listeners and cannot serve http-01."
  }
  validation {
    condition     = alltrue([for k, lb in var.load_balancers : can(regex("^[a-z][a-z0-9_-]{0,31}$", k))])
    error_message = "The load_balancers keys must be 1-32 lower-case letters, digits, '_' or '-', starting with a letter (they become part of LB rule and backend set names)."
  }
  validation {
    condition     = alltrue([for k, lb in var.load_balancers : lb.compartment_id == null || can(regex("^ocid1\\.(compartment|tenancy)\\.", lb.compartment_id))])
    error_message = "Each load_balancers[*].compartment_id must be null or a compartment OCID."
  }
}

variable "challenge_mode" {
  description = "How the port-80 listener answers /.well-known/acme-challenge/: \"token_backend\" (a routing policy forwards to the token-server container) or \"redirect\" (a rule set redirects to a read-only pre-authenticated request on the challenge bucket; no container)."
  type        = string
  default     = "token_backend"

  validation {
    condition     = contains(["token_backend", "redirect"], var.challenge_mode)
    error_message = "The challenge_mode must be \"token_backend\" or \"redirect\"."
  }
}

variable "challenge_par_expires" {
  description = "Redirect mode: RFC 3339 expiry of the read-only pre-authenticated request on the challenge bucket (OCI requires one). Renew it (change this date and apply) before it passes."
  type        = string
  default     = "2030-01-01T00:00:00Z"

  validation {
    condition     = can(formatdate("YYYY", var.challenge_par_expires))
    error_message = "The challenge_par_expires must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z."
  }
}

variable "token_server" {
  description = "Token-backend mode: the token-server container (image built from tokenserver/Dockerfile). subnet_id: a private subnet the load balancers can reach on port 8080, with a service gateway to Object Storage. private_ip: optional fixed address. availability_domain: null = the first one."
  type = object({
    image               = string
    subnet_id           = string
    private_ip          = optional(string)
    availability_domain = optional(string)
    nsg_ids             = optional(list(string), [])
    shape               = optional(string, "CI.Standard.E4.Flex")
    ocpus               = optional(number, 1)
    memory_in_gbs       = optional(number, 1)
  })
  default = null

  validation {
    condition     = var.token_server == null || can(regex("^ocid1\\.subnet\\.", var.token_server.subnet_id))
    error_message = "The token_server.subnet_id must be a subnet OCID (ocid1.subnet...)."
  }
  validation {
    condition     = var.token_server == null || can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.token_server.image))
    error_message = "The token_server.image must be a full image reference with a tag or digest, e.g. fra.ocir.io/<namespace>/acme-token-server:1.0.0."
  }
}

# ---------------------------------------------------------------------------- the function

variable "function_image" {
  description = "Image of the renewer function (fn build / docker build of this repository), with a tag or digest, e.g. fra.ocir.io/<namespace>/acme-renewer:0.1.0."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.function_image))
    error_message = "The function_image must be a full OCIR image reference with a tag or digest, e.g. fra.ocir.io/<namespace>/acme-renewer:0.1.0 (\"latest\" works but makes rollbacks guesswork)."
  }
}

variable "function_subnet_ids" {
  description = "Subnet(s) of the function application. The function needs egress to the ACME CA (internet, e.g. a NAT gateway) and to OCI services (service gateway), and must reach the load balancers' public addresses for the self-check and TLS verification."
  type        = list(string)

  validation {
    condition     = length(var.function_subnet_ids) > 0 && alltrue([for s in var.function_subnet_ids : can(regex("^ocid1\\.subnet\\.", s))])
    error_message = "The function_subnet_ids must hold at least one subnet OCID (ocid1.subnet...)."
  }
}

variable "function_memory_in_mbs" {
  description = "Memory of the function in MB."
  type        = number
  default     = 256

  validation {
    condition     = contains([128, 256, 512, 1024, 2048, 3072], var.function_memory_in_mbs)
    error_message = "The function_memory_in_mbs must be one of the sizes OCI Functions offers: 128, 256, 512, 1024, 2048, 3072."
  }
}

variable "function_timeout_in_seconds" {
  description = "Timeout of a synchronous invocation in seconds; the renewer fits its work into it and defers the rest to the next run."
  type        = number
  default     = 300

  validation {
    condition     = var.function_timeout_in_seconds >= 30 && var.function_timeout_in_seconds <= 300
    error_message = "The function_timeout_in_seconds must be between 30 and 300 (the synchronous maximum of OCI Functions)."
  }
}

variable "function_detached_timeout_in_seconds" {
  description = "Timeout of a detached invocation in seconds (detachedModeTimeoutInSeconds): a scheduled run too short for its fleet invokes the function detached once per load balancer (fan-out), each part running up to this long."
  type        = number
  default     = 3600

  validation {
    condition     = var.function_detached_timeout_in_seconds >= 300 && var.function_detached_timeout_in_seconds <= 3600
    error_message = "The function_detached_timeout_in_seconds must be between 300 and 3600 (the detached maximum of OCI Functions)."
  }
}

variable "fan_out" {
  description = "Let a scheduled run that cannot finish its fleet in time invoke the function in detached mode once per load balancer (grants the function read fn-function and use fn-invocation in its compartment)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days the function's invocation log is kept (OCI Logging allows 30-180 in steps of 30)."
  type        = number
  default     = 30

  validation {
    condition     = contains([30, 60, 90, 120, 150, 180], var.log_retention_days)
    error_message = "The log_retention_days must be one of 30, 60, 90, 120, 150, 180."
  }
}

# ---------------------------------------------------------------------------- schedule

variable "renewal_schedule" {
  description = "UNIX cron expression (minute hour day-of-month month day-of-week, UTC) of the scheduled renew run. Twice a day by default, off the full hour, as Let's Encrypt asks."
  type        = string
  default     = "17 4,16 * * *"

  validation {
    condition     = can(regex("^\\s*([0-9*/,-]+)\\s+([0-9*/,-]+)\\s+([0-9*/,?LW-]+)\\s+([0-9A-Za-z*/,-]+)\\s+([0-9A-Za-z*/,?L#-]+)\\s*$", var.renewal_schedule))
    error_message = "The renewal_schedule must be a 5-field cron expression such as \"17 4,16 * * *\" (minute hour day-of-month month day-of-week)."
  }
}

# ---------------------------------------------------------------------------- vault

variable "existing_vault" {
  description = "An existing Vault and AES master encryption key for the certificate secrets (compartment_id null = compartment_ocid). Null: the stack creates a DEFAULT vault and an AES-256 key."
  type = object({
    vault_id       = string
    key_id         = string
    compartment_id = optional(string)
  })
  default = null

  validation {
    condition     = var.existing_vault == null || (can(regex("^ocid1\\.vault\\.", var.existing_vault.vault_id)) && can(regex("^ocid1\\.key\\.", var.existing_vault.key_id)))
    error_message = "The existing_vault needs a vault OCID (ocid1.vault...) and the OCID of an AES key in it (ocid1.key...)."
  }
}

# ---------------------------------------------------------------------------- operations

variable "notification_emails" {
  description = "E-mail addresses subscribed to the stack's notification topic (alarms, and the renewer's own failure notices). Each address must confirm the subscription mail once."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.notification_emails : can(regex("^[^@\\s:]+@[^@\\s:]+\\.[^@\\s:]+$", e))])
    error_message = "Each notification_emails entry must be a plain e-mail address such as ops@example.com."
  }
}

variable "metrics_namespace" {
  description = "OCI Monitoring namespace the renewer posts its metrics to (days to expiry, run outcomes); the alarms read it. Null turns the metrics and their alarms off."
  type        = string
  default     = "acme_renewer"

  validation {
    condition     = var.metrics_namespace == null || try(can(regex("^[a-z][a-z0-9_]{0,254}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "oci_"), false)
    error_message = "The metrics_namespace must start with a lower-case letter and hold only lower-case letters, digits and '_' (and must not start with oci_, which OCI reserves)."
  }
}

variable "expiry_alarm_days" {
  description = "The days-to-expiry alarm fires when any managed certificate has fewer days left than this, and the renewer warns once when a failing certificate gets this close (renewal normally happens at a third of the lifetime left)."
  type        = number
  default     = 14

  validation {
    condition     = var.expiry_alarm_days >= 1 && var.expiry_alarm_days <= 60
    error_message = "The expiry_alarm_days must be between 1 and 60."
  }
}

variable "network_compartment_ocid" {
  description = "Compartment of the function's subnets, where OCI Functions needs \"use virtual-network-family\" (null = compartment_ocid)."
  type        = string
  default     = null

  validation {
    condition     = var.network_compartment_ocid == null || can(regex("^ocid1\\.(compartment|tenancy)\\.", var.network_compartment_ocid))
    error_message = "The network_compartment_ocid must be null or a compartment OCID."
  }
}

variable "notify_on_success" {
  description = "Whether the renewer also announces every successful renewal on the topic (failures, expiry warnings and recoveries are always announced)."
  type        = bool
  default     = false
}

variable "journal_retention_days" {
  description = "Days the renewer keeps its run journal (one JSON record per run in the state bucket, read by the status action)."
  type        = number
  default     = 90

  validation {
    condition     = var.journal_retention_days >= 1 && var.journal_retention_days <= 3650
    error_message = "The journal_retention_days must be between 1 and 3650."
  }
}

# ---------------------------------------------------------------------------- DNS challenges

variable "acme_account_uri" {
  description = <<-EOT
    The renewer's ACME account URL, for the dns-persist-01 records (_validation-persist.<domain> TXT "<issuer>; accounturi=<this>"). The account is created by the function's first run: invoke {"action": "plan"} (or python -m renewer plan) afterwards and copy the accounturi it prints. While null, no record is written and dns-persist-01 certificates fail with ChallengeFailed.
    A new account (a deleted account secret in Vault, another acme_directory_url) has another URL and invalidates every record: set the new URL here and apply again.
  EOT
  type        = string
  default     = null
  validation {
    condition     = var.acme_account_uri == null || can(regex("^https://[^\\s;\"]+$", var.acme_account_uri))
    error_message = "acme_account_uri must be the https:// account URL that plan prints (no spaces, quotes or semicolons)."
  }
}

variable "acme_issuer_domain" {
  description = "The CA's issuer domain name in dns-persist-01 records (letsencrypt.org for Let's Encrypt; plan prints the one the CA names)."
  type        = string
  default     = "letsencrypt.org"
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", var.acme_issuer_domain))
    error_message = "acme_issuer_domain must be a lower-case domain name such as letsencrypt.org."
  }
}

variable "dns_persist_ttl" {
  description = "TTL in seconds of the dns-persist-01 TXT records."
  type        = number
  default     = 3600
  validation {
    condition     = var.dns_persist_ttl >= 30 && var.dns_persist_ttl <= 86400
    error_message = "dns_persist_ttl must be between 30 and 86400 seconds."
  }
}

variable "dns_zone_compartment_ocid" {
  description = "Compartment of the OCI DNS zones that dns-01 certificates name in dns_zone_id (null = compartment_ocid). The renewer gets \"use dns-records\" there, for exactly those zones."
  type        = string
  default     = null

  validation {
    condition     = var.dns_zone_compartment_ocid == null || can(regex("^ocid1\\.(compartment|tenancy)\\.", var.dns_zone_compartment_ocid))
    error_message = "The dns_zone_compartment_ocid must be null or a compartment OCID."
  }
}
