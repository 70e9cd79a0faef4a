output "acme_renewer" {
  description = "Everything the module reports: function OCID, invoke commands, bucket names, secret names and OCIDs."
  value       = module.acme_renewer
}
