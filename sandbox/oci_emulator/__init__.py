"""A local OCI: the REST APIs the renewer uses, driven by the real ``oci`` SDK. Never shipped."""
