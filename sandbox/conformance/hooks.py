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
"""

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


@schemathesis.hook
def before_call(context, case, **kwargs):
    if case.operation.method.upper() not in ("POST", "PUT"):
        return
    if "customerSegments" not in case.operation.path:
        return
    body = case.body
    if not isinstance(body, dict):
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
