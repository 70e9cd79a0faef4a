# One load balancer, one certificate, challenges answered by the token-server container.
# Copy terraform.tfvars.example to terraform.tfvars, fill in your OCIDs, then
# terraform init && terraform apply. Staging certificates first; see ../../README.md for
# going to production.

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

  acme_contact_emails = ["ops@example.com"]
  notification_emails = ["ops@example.com"]

  load_balancers = {
    web = {
      load_balancer_id = var.load_balancer_id
    }
  }

  certificates = [
    {
      name      = "shop"
      dns_names = ["shop.example.com", "www.shop.example.com"]
      targets = [
        { load_balancer = "web", listeners = ["https"] },
      ]
    },
  ]

  challenge_mode = "token_backend"
  token_server = {
    image     = var.token_server_image
    subnet_id = var.private_subnet_id
  }

  function_image      = var.function_image
  function_subnet_ids = [var.private_subnet_id]
}
