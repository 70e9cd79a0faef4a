# The challenge path on each load balancer's port-80 listener. Only requests under
# /.well-known/acme-challenge/ are affected; every other path keeps the listener's behaviour:
#   token_backend: a routing policy whose one rule forwards the challenge path to the backend
#     set of the token server; unmatched requests go to the listener's default backend set.
#   redirect: a rule set whose one REDIRECT rule (FORCE_LONGEST_PREFIX_MATCH, so it wins over
#     a redirect-everything-to-HTTPS rule on "/") sends the challenge path to the read-only
#     pre-authenticated request on the challenge bucket. Let's Encrypt follows it (HTTPS, 443).
# The listener itself is managed only when load_balancers[*].http_listener is set. Otherwise,
# in token_backend mode, the renewer brings the route into place on the existing port-80
# listener before its first order (the configuration's oci.challengeBackendSet): it attaches
# this routing policy, or puts the same rule first in the listener's own policy, also on the
# HTTPS listeners when port 80 redirects to HTTPS, or creates a port-80 listener that serves
# only the challenge path (renewer/adapters/oci_challenge_route.py). In redirect mode attach
# the rule set yourself (README.md: adopting a port-80 listener).

resource "oci_load_balancer_backend_set" "tokens" {
  for_each = local.token_backend ? var.load_balancers : {}

  load_balancer_id = each.value.load_balancer_id
  name             = local.token_backend_set
  policy           = "ROUND_ROBIN"

  health_checker {
    protocol          = "HTTP"
    port              = local.token_server_port
    url_path          = "/healthz"
    return_code       = 200
    interval_ms       = 10000
    timeout_in_millis = 3000
    retries           = 3
  }
}

resource "oci_load_balancer_backend" "tokens" {
  for_each = local.token_backend ? var.load_balancers : {}

  load_balancer_id = each.value.load_balancer_id
  backendset_name  = oci_load_balancer_backend_set.tokens[each.key].name
  ip_address       = one(oci_container_instances_container_instance.token_server[*].vnics[0].private_ip)
  port             = local.token_server_port
}

resource "oci_load_balancer_load_balancer_routing_policy" "challenge" {
  for_each = local.token_backend ? var.load_balancers : {}

  load_balancer_id           = each.value.load_balancer_id
  name                       = "${local.lb_name_prefix}_challenge"
  condition_language_version = "V1"

  rules {
    name      = "${local.lb_name_prefix}_http01" # the renewer's rule name (its ownership mark)
    condition = "any(http.request.url.path sw (i '${local.challenge_path}'))"

    actions {
      name             = "FORWARD_TO_BACKENDSET"
      backend_set_name = oci_load_balancer_backend_set.tokens[each.key].name
    }
  }
}

resource "oci_load_balancer_rule_set" "challenge_redirect" {
  for_each = local.token_backend ? {} : var.load_balancers

  load_balancer_id = each.value.load_balancer_id
  name             = "${local.lb_name_prefix}_challenge_redirect"

  items {
    action        = "REDIRECT"
    description   = "ACME http-01 challenges: read-only pre-authenticated request on ${local.challenge_bucket_name}"
    response_code = 302

    conditions {
      attribute_name  = "PATH"
      attribute_value = local.challenge_path
      operator        = "FORCE_LONGEST_PREFIX_MATCH"
    }

    redirect_uri {
      protocol = "HTTPS"
      host     = "objectstorage.${var.region}.oraclecloud.com"
      port     = 443
      # {path} is the load balancer's token for the whole original path, so the object read
      # is .well-known/acme-challenge/<token> (what the renewer writes).
      path  = "${trimsuffix(one(oci_objectstorage_preauthrequest.challenges[*].access_uri), "/")}{path}"
      query = ""
    }
  }
}

resource "oci_load_balancer_listener" "http" {
  for_each = { for key, lb in var.load_balancers : key => lb if lb.http_listener != null }

  load_balancer_id         = each.value.load_balancer_id
  name                     = each.value.http_listener.name
  port                     = each.value.http_listener.port
  protocol                 = "HTTP"
  default_backend_set_name = each.value.http_listener.default_backend_set_name
  hostname_names           = each.value.http_listener.hostname_names
  routing_policy_name      = local.token_backend ? oci_load_balancer_load_balancer_routing_policy.challenge[each.key].name : null
  rule_set_names           = concat(each.value.http_listener.rule_set_names, local.token_backend ? [] : [oci_load_balancer_rule_set.challenge_redirect[each.key].name])
}
