# dns-persist-01 (draft-ietf-acme-dns-persist): the _validation-persist TXT record of each
# domain validated that way, written once, in the OCI DNS zone given as the certificate's
# dns_zone_id. The renewer needs no DNS permission for it at renewal time.
#
# The record binds the ACME account URL (var.acme_account_uri, printed by the renewer's plan
# once the first run has created the account): a new account invalidates it. oci_dns_rrset
# owns the whole RRset — another TXT value at the same _validation-persist name (another CA's
# record) must be added to this resource's items, not beside it.
resource "oci_dns_rrset" "dns_persist" {
  for_each        = local.dns_persist_records
  zone_name_or_id = each.value.zone_id
  domain          = each.key
  rtype           = "TXT"

  items {
    domain = each.key
    rtype  = "TXT"
    # The value has blanks and semicolons: one quoted character-string.
    rdata = "\"${each.value.value}\""
    ttl   = var.dns_persist_ttl
  }
}
