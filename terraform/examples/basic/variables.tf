variable "tenancy_ocid" {
  description = "OCID of the tenancy."
  type        = string
}

variable "region" {
  description = "Region identifier, e.g. eu-frankfurt-1."
  type        = string
}

variable "compartment_ocid" {
  description = "Compartment for everything the stack creates."
  type        = string
}

variable "load_balancer_id" {
  description = "OCID of the existing load balancer whose HTTPS listener \"https\" gets the certificate."
  type        = string
}

variable "private_subnet_id" {
  description = "Private subnet (NAT and service gateway) for the function and the token server, reachable from the load balancer on port 8080."
  type        = string
}

variable "function_image" {
  description = "Renewer function image in OCIR."
  type        = string
}

variable "token_server_image" {
  description = "Token-server image in OCIR."
  type        = string
}
