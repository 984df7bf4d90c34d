"""What transport.py borrows from requests and urllib3 beyond their public API, pinned here.

Each failure names the library's version, the member that moved and what in transport.py
relies on it. (singer-sdk's members are pinned in test_sdk_contract.py.)
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from importlib.metadata import version

import pytest
import requests
from urllib3 import PoolManager
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

REQUESTS = f"requests {version('requests')}"
URLLIB3 = f"urllib3 {version('urllib3')}"
READ_BODY = "transport.py BoundedAdapter._read_body sets it to hand requests the body it read"
INIT_POOLMANAGER = (
    "transport.py BoundedAdapter.init_poolmanager replaces it so that every connection is a "
    "watched one (the watchdog bounds the wait for each answer's head)"
)
BODY = b"the body the adapter read"


def read_response() -> requests.Response:
    """A response as BoundedAdapter._read_body leaves it, over a raw stream of other bytes."""
    response = requests.Response()
    response.status_code = 200
    response.raw = io.BytesIO(b"the raw stream, already read by the adapter")
    response._content = BODY
    response._content_consumed = True  # type: ignore[attr-defined]  # not in types-requests
    return response


@pytest.mark.parametrize("member", ["_content", "_content_consumed"])
def test_a_response_still_has_each_attribute_the_adapter_sets(member: str) -> None:
    assert member in vars(requests.Response()), (
        f"{REQUESTS}: Response.{member} is no longer an attribute of a new Response; {READ_BODY}"
    )


def test_content_is_the_body_set_in_content_without_reading_raw() -> None:
    response = read_response()
    assert response.content == BODY, (
        f"{REQUESTS}: Response.content no longer returns Response._content once set; {READ_BODY}"
    )
    assert response.raw.tell() == 0, f"{REQUESTS}: Response.content read .raw; {READ_BODY}"


def test_iter_content_is_the_body_once_content_is_consumed() -> None:
    response = read_response()
    assert b"".join(response.iter_content(4)) == BODY, (
        f"{REQUESTS}: Response.iter_content no longer yields Response._content when "
        f"Response._content_consumed is True; {READ_BODY}"
    )
    assert response.raw.tell() == 0, f"{REQUESTS}: Response.iter_content read .raw; {READ_BODY}"


def test_a_pool_manager_makes_its_pools_of_the_classes_in_pool_classes_by_scheme() -> None:
    manager = PoolManager()
    classes = getattr(manager, "pool_classes_by_scheme", None)
    assert isinstance(classes, Mapping), (
        f"{URLLIB3}: PoolManager.pool_classes_by_scheme is gone; {INIT_POOLMANAGER}"
    )
    assert {"http", "https"} <= classes.keys(), (
        f"{URLLIB3}: PoolManager.pool_classes_by_scheme has keys {sorted(classes)}, not 'http' "
        f"and 'https'; {INIT_POOLMANAGER}"
    )

    class Replaced(HTTPConnectionPool):
        pass

    class ReplacedTLS(HTTPSConnectionPool):
        pass

    manager.pool_classes_by_scheme = {"http": Replaced, "https": ReplacedTLS}
    for scheme, replacement in manager.pool_classes_by_scheme.items():
        pool = manager.connection_from_host("api.example.invalid", scheme=scheme)  # no connection
        assert isinstance(pool, replacement), (
            f"{URLLIB3}: PoolManager.connection_from_host made a {type(pool).__name__} for "
            f"{scheme}, not the class in pool_classes_by_scheme; {INIT_POOLMANAGER}"
        )
