"""The token server's settings errors describe a rejected value, never repeat it."""

from __future__ import annotations

import pytest

from tokenserver.settings import Settings, SettingsError

SECRET = "-----BEGIN EC PRIVATE KEY-----MHcCAQEEIIr7secretsecret"  # noqa: S105 - a fake


@pytest.mark.parametrize(
    "environment",
    [
        {"TOKEN_SERVER_NAMESPACE": SECRET},
        {"OCI_AUTH": SECRET},
        {"TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT": SECRET},
        {"TOKEN_SERVER_CACHE_SECONDS": SECRET},
        {"TOKEN_SERVER_STORAGE_THREADS": SECRET},
        {"TOKEN_SERVER_IDLE_TIMEOUT_SECONDS": "nan" + SECRET},
    ],
    ids=lambda e: next(iter(e)),
)
def test_a_rejected_value_is_described_not_echoed(environment):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"TOKEN_SERVER_BUCKET": "acme-challenges", **environment})
    message = str(info.value)
    assert next(iter(environment)) in message  # names the variable
    assert "secret" not in message
    assert "PRIVATE" not in message
    assert "characters" in message
