"""The Content-Security-Policy: strict by default, framing allowed only where configured."""

from __future__ import annotations

from clientpay_connect.headers import content_security_policy, widened_policy


def directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_only_our_own_pages_may_frame_us_by_default():
    for unset in ("", "   "):
        assert directives(content_security_policy(unset))["frame-ancestors"] == "'self'"


def test_the_matter_software_may_frame_us_when_configured():
    policy = directives(content_security_policy("https://app.clio.example https://*.pp.example"))
    assert policy["frame-ancestors"] == "https://app.clio.example https://*.pp.example"


def test_nothing_but_our_own_origin_runs_or_loads():
    policy = directives(content_security_policy(""))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert "unsafe-inline" not in content_security_policy("")


def test_a_widened_policy_adds_only_the_sources_given():
    policy = directives(
        widened_policy(
            "",
            {
                "script-src": ["https://js.example", "https://js.example"],
                "frame-src": ["https://frames.example"],
                "connect-src": [],
            },
        )
    )
    # After 'self' where the site's policy has the directive, once each.
    assert policy["script-src"] == "'self' https://js.example"
    # A directive of their own where it has none: only those frames.
    assert policy["frame-src"] == "https://frames.example"
    assert policy["connect-src"] == "'self'"
    strict = directives(content_security_policy(""))
    assert {k: v for k, v in policy.items() if k not in ("script-src", "frame-src")} == {
        k: v for k, v in strict.items() if k != "script-src"
    }
