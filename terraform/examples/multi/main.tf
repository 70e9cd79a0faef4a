# Two load balancers and several certificates, challenges answered by redirecting to a
# read-only pre-authenticated request on the challenge bucket (no token-server container),
# an existing vault, Let's Encrypt production, and one certificate also imported into an OCI
# Certificates-service certificate. The port-80 listener of "shop" is managed by this stack
# (import it first, see ../../README.md); the one of "api" is left to you: attach the rule
# set named in the challenge_routing output.

terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = "~> 8.28"
    }
  }
}

provider "oci" {
  region = var.region
}

module "acme_renewer" {
  source = "../.."

  tenancy_ocid     = var.tenancy_ocid
  region           = var.region
  compartment_ocid = var.compartment_ocid
  name_prefix      = "edge-tls"
  freeform_tags    = { team = "platform" }

  acme_directory_url  = "https://acme-v02.api.letsencrypt.org/directory"
  acme_contact_emails = ["tls@example.com"]
  notification_emails = ["tls@example.com", "oncall@example.com"]
  expiry_alarm_days   = 10

  existing_vault = {
    vault_id       = var.vault_id
    key_id         = var.key_id
    compartment_id = var.security_compartment_ocid
  }

  load_balancers = {
    shop = {
      load_balancer_id = var.shop_load_balancer_id
      http_listener = {
        name                     = "http"
        default_backend_set_name = "shop-app"
        rule_set_names           = ["redirect_to_https"]
      }
    }
    api = {
      load_balancer_id = var.api_load_balancer_id
      compartment_id   = var.network_compartment_ocid
    }
  }

  certificates = [
    {
      name      = "shop"
      dns_names = ["shop.example.com", "www.shop.example.com"]
      profile   = "tlsserver"
      targets = [
        { load_balancer = "shop", listeners = ["https", "https-alt"] },
      ]
    },
    {
      name      = "api"
      dns_names = ["api.example.com"]
      key_type  = "rsa-2048"
      targets = [
        { load_balancer = "api", listeners = ["https"] },
        { certificate_id = var.api_certificate_id },
      ]
    },
    {
      name      = "status"
      dns_names = ["status.example.com"]
      reuse_key = true
      targets = [
        { load_balancer = "shop", listeners = ["https-status"] },
      ]
    },
  ]

  renewal = {
    retention             = 5
    keep_previous_bundles = 2
  }

  challenge_mode        = "redirect"
  challenge_par_expires = "2031-01-01T00:00:00Z"

  function_image           = var.function_image
  function_subnet_ids      = [var.function_subnet_id]
  network_compartment_ocid = var.network_compartment_ocid
  renewal_schedule         = "41 2,14 * * *"
}
