variable "tenancy_ocid" {
  description = "OCID of the tenancy."
  type        = string
}

variable "region" {
  description = "Region identifier, e.g. us-ashburn-1."
  type        = string
}

variable "compartment_ocid" {
  description = "Compartment for everything the stack creates."
  type        = string
}

variable "network_compartment_ocid" {
  description = "Compartment of the network: the function subnet and the \"api\" load balancer."
  type        = string
}

variable "security_compartment_ocid" {
  description = "Compartment of the existing vault."
  type        = string
}

variable "vault_id" {
  description = "OCID of the existing vault."
  type        = string
}

variable "key_id" {
  description = "OCID of an AES key in that vault."
  type        = string
}

variable "shop_load_balancer_id" {
  description = "OCID of the shop load balancer."
  type        = string
}

variable "api_load_balancer_id" {
  description = "OCID of the API load balancer."
  type        = string
}

variable "api_certificate_id" {
  description = "OCID of the OCI Certificates-service certificate (imported) that also carries the API certificate."
  type        = string
}

variable "function_subnet_id" {
  description = "Private subnet (NAT and service gateway) of the function."
  type        = string
}

variable "function_image" {
  description = "Renewer function image in OCIR."
  type        = string
}
