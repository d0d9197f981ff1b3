"""The container's HEALTHCHECK: exit 0 when the gateway in it answers /readyz with 200, else 1.

Standard library only (it runs in the image, beside the gateway). The port is the gateway's,
LOGWAY_GATEWAY_PORT (default 8000); the gateway listens on every address in the container.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = "8000"
TIMEOUT = 4.0  # below the HEALTHCHECK --timeout


def main() -> int:
    port = os.environ.get("LOGWAY_GATEWAY_PORT", DEFAULT_PORT)
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read(200).decode(errors='replace').strip()}")
        return 1
    except (OSError, ValueError) as exc:
        print(f"{url}: {exc}")
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
