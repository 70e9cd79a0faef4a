# Token-backend mode: the token server (tokenserver/, built from tokenserver/Dockerfile) as an
# OCI Container Instance. It reads the challenge bucket with its resource principal and
# answers GET/HEAD /.well-known/acme-challenge/<token> and GET /healthz on port 8080.

data "oci_identity_availability_domains" "this" {
  compartment_id = var.tenancy_ocid
}

resource "oci_container_instances_container_instance" "token_server" {
  count = local.token_backend && var.token_server != null ? 1 : 0

  compartment_id           = var.compartment_ocid
  availability_domain      = coalesce(var.token_server.availability_domain, data.oci_identity_availability_domains.this.availability_domains[0].name)
  display_name             = "${var.name_prefix}-token-server"
  shape                    = var.token_server.shape
  container_restart_policy = "ALWAYS"
  freeform_tags            = local.tags

  shape_config {
    ocpus         = var.token_server.ocpus
    memory_in_gbs = var.token_server.memory_in_gbs
  }

  containers {
    display_name = "token-server"
    image_url    = var.token_server.image
    environment_variables = {
      TOKEN_SERVER_PORT      = tostring(local.token_server_port)
      TOKEN_SERVER_BUCKET    = local.challenge_bucket_name
      TOKEN_SERVER_NAMESPACE = local.namespace
      OCI_AUTH               = "resource_principal"
      OCI_REGION             = var.region
    }

    health_checks {
      name                     = "healthz"
      health_check_type        = "HTTP"
      path                     = "/healthz"
      port                     = local.token_server_port
      interval_in_seconds      = 30
      timeout_in_seconds       = 5
      failure_threshold        = 3
      initial_delay_in_seconds = 10
      failure_action           = "KILL"
    }

    security_context {
      security_context_type          = "LINUX"
      is_non_root_user_check_enabled = true
      is_root_file_system_readonly   = true
    }
  }

  vnics {
    subnet_id             = var.token_server.subnet_id
    private_ip            = var.token_server.private_ip
    nsg_ids               = var.token_server.nsg_ids
    is_public_ip_assigned = false
    display_name          = "${var.name_prefix}-token-server"
  }
}
