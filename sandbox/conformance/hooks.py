"""Schemathesis hooks for `cargo xtask conformance`, loaded through SCHEMATHESIS_HOOKS.

The hook changes no segment request: the spec describes requests as the server accepts them
(closed enumerations, the documents' rules), so schemathesis' own cases are checked as they are.

The token operation needs help the other way round: generated credentials are never
right, so the token operation would only ever answer 401 and its 200 response would never be
checked against the spec. When a generated token body holds a string `Username`, a string
`Password` and an integer `SiteId`, the hook puts the seeded agent's credentials there (the
xtask passes them in CONFORMANCE_EMAIL, CONFORMANCE_PASSWORD and CONFORMANCE_SITE_ID), which
again keeps the body exactly as valid or invalid as it was. It does so only when `LoginType`
is exactly `Password`: the sandbox accepts `password` in any case (the seed's prose says
`password`, its example sends `Password`), while the spec's enum allows only `Password`, so a
negative case with `LoginType: "password"` and right credentials would get 200.
"""

import os

import schemathesis

EMAIL = os.environ.get("CONFORMANCE_EMAIL", "agent@example.com")
PASSWORD = os.environ.get("CONFORMANCE_PASSWORD", "sandbox-password")
SITE_ID = int(os.environ.get("CONFORMANCE_SITE_ID", "10000"))


def _is_int64(value):
    # Outside int64 the value breaks `format: int64`, which may make the case a negative one.
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


@schemathesis.hook
def before_call(context, case, **kwargs):
    body = case.body
    if case.operation.method.upper() not in ("POST", "PUT") or not isinstance(body, dict):
        return
    if case.operation.path.endswith("/jwttoken/generate"):
        if (
            body.get("LoginType") == "Password"
            and isinstance(body.get("Username"), str)
            and isinstance(body.get("Password"), str)
            and _is_int64(body.get("SiteId"))
        ):
            body["Username"] = EMAIL
            body["Password"] = PASSWORD
            body["SiteId"] = SITE_ID
        return
