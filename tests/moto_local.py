"""moto's server on 127.0.0.1, in this process: the one way the tests start it (the `endpoint`
fixture in tests/conftest.py, and tests/test_docs_commands.py for its `aws` blocks)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def reset_moto(endpoint: str) -> None:
    """Empty every moto backend (moto's reset endpoint, POST /moto-api/reset)."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()


@contextmanager
def moto_server() -> Iterator[str]:
    """ThreadedMotoServer on 127.0.0.1 and a free port; yields its endpoint, http://127.0.0.1:<port>.

    moto's backends are shared by every server (and every mock_aws) in this process: the server
    starts empty and leaves nothing behind for whoever comes next."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        reset_moto(url)
        yield url
        reset_moto(url)
    finally:
        server.stop()
