"""Where an alert may be sent: the URL policy, on literal addresses and on names as a resolver answers them."""

from __future__ import annotations

import pytest

from governance.alerting.addresses import AddressPolicy, AddressRefused, check_url, mask_url, parse_url

PUBLIC = AddressPolicy()
DEV = AddressPolicy(allow_loopback=True)


def resolver(answers: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise AddressRefused(f"{host} could not be resolved (test resolver).", transient=True)
        return answers[host]

    return resolve


NO_DNS = resolver({})


def refused(url: str, policy: AddressPolicy = PUBLIC, resolve=NO_DNS) -> str:
    with pytest.raises(AddressRefused) as caught:
        check_url(url, policy, resolve)
    return caught.value.message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("file:///etc/passwd", "file: is not"),
        ("ftp://example.com/x", "ftp: is not"),
        ("gopher://example.com/", "gopher: is not"),
        ("javascript:alert(1)", "javascript: is not"),
        ("//example.com/hook", "no scheme"),
        ("https://user:pass@example.com/hook", "user name or password"),
        ("https:///hook", "names no host"),
        ("https://exa mple.com/", "spaces or control characters"),
        ("https://example.com:99999/", "cannot be read"),
        ("https://2130706433/", "address written as a number"),
        ("https://0x7f.1/", "address written as a number"),
        ("https://[fe80::1%25eth0]/", "'%'"),
        ("", "Give the destination's URL"),
    ],
)
def test_it_refuses_urls_that_are_not_https_urls_to_a_host(url, says):
    assert says in refused(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("https://[fd00:ec2::254]/", "cloud metadata address"),
        ("https://[::ffff:169.254.169.254]/", "cloud metadata address"),
        ("https://100.100.100.200/", "cloud metadata address"),
        ("https://168.63.129.16/", "cloud metadata address"),
        ("https://169.254.10.20/", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://10.1.2.3/hook", "private address"),
        ("https://172.16.0.1/hook", "private address"),
        ("https://192.168.1.10/hook", "private address"),
        ("https://[fc00::1]/hook", "private address"),
        ("https://100.64.0.1/hook", "non-public"),  # shared address space (carrier-grade NAT)
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[64:ff9b::a00:1]/hook", "10.0.0.1 is a private address"),  # NAT64 carrying 10.0.0.1
        ("https://[2002:a9fe:a9fe::]/hook", "cloud metadata address"),  # 6to4 carrying 169.254.169.254
    ],
)
def test_it_refuses_addresses_that_are_not_public(url, says):
    assert says in refused(url)


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.google.internal.", "metadata.goog", "metadata"])
def test_it_refuses_metadata_host_names_whatever_they_resolve_to(host):
    assert "cloud metadata host" in refused(f"https://{host}/computeMetadata/v1/", resolve=resolver({}))


@pytest.mark.parametrize(
    ("answers", "says"),
    [
        (["10.0.0.7"], "hooks.example.com resolves to 10.0.0.7: 10.0.0.7 is a private address"),
        (["169.254.169.254"], "cloud metadata address"),
        (["fd00:ec2::254"], "cloud metadata address"),
        (["127.0.0.1"], "loopback"),
        (["93.184.215.14", "192.168.0.5"], "192.168.0.5 is a private address"),  # one bad answer is enough
    ],
)
def test_it_refuses_names_that_resolve_to_addresses_it_refuses(answers, says):
    assert says in refused("https://hooks.example.com/x", resolve=resolver({"hooks.example.com": answers}))


def test_a_name_that_does_not_resolve_is_refused_as_a_passing_problem():
    with pytest.raises(AddressRefused) as caught:
        check_url("https://nowhere.example/x", PUBLIC, NO_DNS)
    assert caught.value.transient


def test_public_addresses_and_names_pass():
    target, addresses = check_url("https://93.184.215.14:8443/a?b=1", PUBLIC, NO_DNS)
    assert (target.host, target.port, target.target, [str(a) for a in addresses]) == (
        "93.184.215.14",
        8443,
        "/a?b=1",
        ["93.184.215.14"],
    )
    target, addresses = check_url(
        "https://Hooks.Example.com/services/T0/B0/x", PUBLIC, resolver({"hooks.example.com": ["93.184.215.14"]})
    )
    assert target.host == "hooks.example.com" and target.host_header == "hooks.example.com"
    assert [str(a) for a in addresses] == ["93.184.215.14"]


def test_an_international_name_is_sent_in_its_ascii_form():
    target, _ = check_url("https://bücher.example/x", PUBLIC, resolver({"xn--bcher-kva.example": ["93.184.215.14"]}))
    assert target.host == "xn--bcher-kva.example"


def test_plain_http_only_to_loopback_and_only_when_the_deployment_allows_it():
    assert "Only https" in refused("http://93.184.215.14/hook")
    assert "loopback" in refused("http://127.0.0.1:8080/hook")
    target, addresses = check_url("http://127.0.0.1:8080/hook", DEV, NO_DNS)
    assert target.scheme == "http" and str(addresses[0]) == "127.0.0.1"
    check_url("http://localhost:8080/hook", DEV, resolver({"localhost": ["127.0.0.1", "::1"]}))
    assert "Only https" in refused("http://93.184.215.14/hook", DEV)
    assert "Only https" in refused(
        "http://mixed.example/hook", DEV, resolver({"mixed.example": ["127.0.0.1", "93.184.215.14"]})
    )


def test_allow_listed_networks_pass_but_metadata_never_does():
    policy = AddressPolicy.from_settings(allow_loopback=False, allowed_networks=["10.1.2.0/24", "169.254.0.0/16"])
    check_url("https://10.1.2.3/hook", policy, NO_DNS)
    assert "private address" in refused("https://10.1.3.3/hook", policy)
    check_url("https://169.254.10.20/hook", policy, NO_DNS)
    assert "cloud metadata address" in refused("https://169.254.169.254/", policy)


def test_a_saved_url_is_shown_without_its_secret_path():
    assert mask_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET") == "https://hooks.slack.com/…"
    assert mask_url("https://[2606:4700::1]:8443/hook?token=abc") == "https://[2606:4700::1]:8443/…"
    assert mask_url("https://events.pagerduty.com/") == "https://events.pagerduty.com/"
    assert parse_url("https://x.example/").host_header == "x.example"
