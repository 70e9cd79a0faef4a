"""``python -m tokenserver.healthcheck``: exit 0 when the local server answers /healthz with 200.

For the image's ``HEALTHCHECK`` (the slim base has no curl). Stdlib only, so it costs a bare
interpreter start, not an SDK import. Reads ``TOKEN_SERVER_PORT`` like the server.
"""

from __future__ import annotations

import http.client
import os
import sys

TIMEOUT_S = 3.0


def main() -> int:
    """0 healthy, 1 not (no answer, or not 200)."""
    port = int(os.environ.get("TOKEN_SERVER_PORT", "").strip() or "8080")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        connection.request("GET", "/healthz", headers={"Host": "localhost"})
        status = connection.getresponse().status
    except OSError as exc:
        sys.stderr.write(f"token server not answering on port {port}: {exc}\n")
        return 1
    finally:
        connection.close()
    return 0 if status == 200 else 1  # noqa: PLR2004 - HTTP OK


if __name__ == "__main__":
    sys.exit(main())
