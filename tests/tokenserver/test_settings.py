"""Settings from the environment: defaults, and errors that name the variable to fix."""

from __future__ import annotations

import pytest

from tokenserver.settings import Settings, SettingsError


def test_defaults_are_the_production_ones():
    settings = Settings.from_env({"TOKEN_SERVER_BUCKET": "acme-challenges"})

    assert settings == Settings(bucket="acme-challenges")
    assert (settings.host, settings.port, settings.auth) == ("0.0.0.0", 8080, "resource_principal")  # noqa: S104
    assert settings.namespace is None
    assert (settings.cache_seconds, settings.negative_cache_seconds) == (5.0, 1.0)


def test_every_variable_is_read():
    env = {
        "TOKEN_SERVER_BUCKET": "b.x_y-z",
        "TOKEN_SERVER_NAMESPACE": "axaxnpcrorw5",
        "TOKEN_SERVER_PORT": "9000",
        "TOKEN_SERVER_HOST": "127.0.0.1",
        "OCI_AUTH": "instance_principal",
        "OCI_REGION": "eu-frankfurt-1",
        "TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT": "http://127.0.0.1:1234",
        "OCI_CONFIG_FILE": "/etc/oci/config",
        "OCI_CONFIG_PROFILE": "TOKENS",
        "TOKEN_SERVER_CACHE_SECONDS": "7.5",
        "TOKEN_SERVER_NEGATIVE_CACHE_SECONDS": "0",
        "TOKEN_SERVER_STORAGE_TIMEOUT_SECONDS": "2",
        "TOKEN_SERVER_STORAGE_THREADS": "4",
        "TOKEN_SERVER_MAX_PENDING_FETCHES": "16",
        "TOKEN_SERVER_MAX_CONNECTIONS": "100",
        "TOKEN_SERVER_HEADER_TIMEOUT_SECONDS": "3",
        "TOKEN_SERVER_IDLE_TIMEOUT_SECONDS": "70",
    }

    settings = Settings.from_env(env)

    assert settings == Settings(
        bucket="b.x_y-z",
        namespace="axaxnpcrorw5",
        port=9000,
        host="127.0.0.1",
        auth="instance_principal",
        region="eu-frankfurt-1",
        object_storage_endpoint="http://127.0.0.1:1234",
        config_file="/etc/oci/config",
        profile="TOKENS",
        cache_seconds=7.5,
        negative_cache_seconds=0.0,
        storage_timeout=2.0,
        storage_threads=4,
        max_pending_fetches=16,
        max_connections=100,
        header_timeout=3.0,
        idle_timeout=70.0,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TOKEN_SERVER_BUCKET": ""}, "TOKEN_SERVER_BUCKET"),
        ({"TOKEN_SERVER_BUCKET": "   "}, "TOKEN_SERVER_BUCKET"),
        ({"TOKEN_SERVER_BUCKET": "a/b"}, "TOKEN_SERVER_BUCKET"),
        ({"TOKEN_SERVER_NAMESPACE": "Has Space"}, "TOKEN_SERVER_NAMESPACE"),
        ({"TOKEN_SERVER_PORT": "80.5"}, "TOKEN_SERVER_PORT"),
        ({"TOKEN_SERVER_PORT": "70000"}, "TOKEN_SERVER_PORT"),
        ({"OCI_AUTH": "api_key"}, "OCI_AUTH"),
        ({"TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT": "objectstorage"}, "ENDPOINT"),
        ({"TOKEN_SERVER_CACHE_SECONDS": "nan"}, "TOKEN_SERVER_CACHE_SECONDS"),
        ({"TOKEN_SERVER_CACHE_SECONDS": "3600"}, "TOKEN_SERVER_CACHE_SECONDS"),
        ({"TOKEN_SERVER_NEGATIVE_CACHE_SECONDS": "-1"}, "TOKEN_SERVER_NEGATIVE_CACHE_SECONDS"),
        ({"TOKEN_SERVER_STORAGE_TIMEOUT_SECONDS": "0"}, "TOKEN_SERVER_STORAGE_TIMEOUT_SECONDS"),
        ({"TOKEN_SERVER_STORAGE_THREADS": "0"}, "TOKEN_SERVER_STORAGE_THREADS"),
        (
            {"TOKEN_SERVER_STORAGE_THREADS": "8", "TOKEN_SERVER_MAX_PENDING_FETCHES": "4"},
            "TOKEN_SERVER_MAX_PENDING_FETCHES",
        ),
        ({"TOKEN_SERVER_MAX_CONNECTIONS": "many"}, "TOKEN_SERVER_MAX_CONNECTIONS"),
        ({"TOKEN_SERVER_IDLE_TIMEOUT_SECONDS": "inf"}, "TOKEN_SERVER_IDLE_TIMEOUT_SECONDS"),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], named: str):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"TOKEN_SERVER_BUCKET": "acme-challenges", **env})


def test_a_missing_bucket_says_what_to_set():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({})

    assert "TOKEN_SERVER_BUCKET is required" in str(error.value)
