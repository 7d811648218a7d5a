"""The egress policy's decision on resolved addresses: every class beyond loopback, without connecting."""

import pytest

from verify.fetching.egress import EgressPolicy, address_refusal, allowed_address_parse, resolve_checked

NOBODY = EgressPolicy()


@pytest.mark.parametrize(
    ("address", "address_class"),
    [
        ("127.0.0.1", "loopback"),
        ("127.10.0.3", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link_local"),
        ("169.254.0.1", "link_local"),
        ("fe80::1", "link_local"),
        ("fe80::1%eth0", "link_local"),
        ("100.64.0.1", "cgnat"),
        ("100.127.255.254", "cgnat"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "reserved"),
        ("198.18.0.1", "reserved"),
        ("0.1.2.3", "reserved"),
        # IPv4 inside IPv6: judged by the IPv4 address they lead to
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link_local"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link_local"),
        ("64:ff9b::c0a8:101", "private"),
        ("64:ff9b:1::1", "reserved"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:a9fe:a9fe::1", "link_local"),
    ],
)
def test_address_refusal_names_the_class(address: str, address_class: str) -> None:
    refusal = address_refusal(address, 443, policy=NOBODY)

    assert refusal is not None
    assert refusal.address_class == address_class
    assert refusal.port == 443


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14", "64:ff9b::808:808"]
)
def test_address_refusal_allows_public_addresses(address: str) -> None:
    assert address_refusal(address, 80, policy=NOBODY) is None


def test_address_refusal_lets_through_exactly_the_allowed_address_and_port() -> None:
    policy = EgressPolicy.from_setting(["127.0.0.1:8081", "[::1]:9000", "localhost:7000"])

    assert address_refusal("127.0.0.1", 8081, policy=policy) is None
    assert address_refusal("::1", 9000, policy=policy) is None
    assert address_refusal("127.0.0.1", 7000, policy=policy) is None
    assert address_refusal("127.0.0.1", 8082, policy=policy) is not None
    assert address_refusal("127.0.0.2", 8081, policy=policy) is not None
    assert address_refusal("::ffff:127.0.0.1", 8082, policy=policy) is not None


def test_refusal_message_names_the_address_class_and_host() -> None:
    refusal = address_refusal("169.254.169.254", 80, policy=NOBODY, host="metadata.internal")

    assert refusal is not None
    assert refusal.message == (
        "Refused to connect to metadata.internal (169.254.169.254) port 80: it is a link-local address "
        "(this includes the cloud metadata service 169.254.169.254), which fetches may not reach."
    )


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.1:0", "example.org:80", "127.0.0.1:http"])
def test_allowed_address_parse_refuses_anything_but_an_address_and_port(entry: str) -> None:
    with pytest.raises(ValueError):
        allowed_address_parse(entry)


def test_resolve_checked_refuses_a_name_that_resolves_to_loopback() -> None:
    # "localhost" resolves through the system resolver; no connection is opened.
    with pytest.raises(Exception) as raised:
        resolve_checked("localhost", 80, policy=NOBODY)

    assert getattr(raised.value, "address_class", None) == "loopback"
