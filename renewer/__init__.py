"""Keeps OCI Load Balancer listeners on valid ACME certificates.

Pure core (``model``, ``policy``, ``pki``, ``errors``, ``ports``, ``clock``) and adapters
(``renewer.adapters``); only adapters import SDKs.
"""
