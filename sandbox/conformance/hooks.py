"""Schemathesis hooks for `cargo xtask conformance`, loaded through SCHEMATHESIS_HOOKS.

The spec describes `conditionMetType` and `operator` as *extensible* enumerations: one of the
known values, or any other string, so that a client keeps decoding when a server adds a value.
The same `CustomerSegment` schema describes request bodies, so by the letter of the spec any
string is a valid request value, while a server (the sandbox, and Comm100) accepts only the
values it knows and answers 400 for any other.

Left alone, almost every generated create or update body carries an unknown string there, gets
400, and fails the positive_data_acceptance check, and the run seldom reaches a stored segment.
This hook replaces such unknown *strings* with a known value before each call. It never changes
whether a body is valid by the spec: every string is valid there, so a positive case stays
positive and a negative case stays negative (its invalid part is left as it is).

The token operation has the same problem the other way round: generated credentials are never
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

CONDITION_MET_TYPES = {"all", "any", "logicalExpression"}
OPERATORS = {
    "is",
    "isNot",
    "contains",
    "doesNotContain",
    "isMoreThan",
    "isNotMoreThan",
    "isLessThan",
    "isNotLessThan",
    "regularExpression",
    "include",
}


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
    if "customerSegments" not in case.operation.path:
        return
    met = body.get("conditionMetType")
    if isinstance(met, str) and met not in CONDITION_MET_TYPES:
        body["conditionMetType"] = "all"
    conditions = body.get("conditions")
    if isinstance(conditions, list):
        for condition in conditions:
            if isinstance(condition, dict):
                operator = condition.get("operator")
                if isinstance(operator, str) and operator not in OPERATORS:
                    condition["operator"] = "include"
