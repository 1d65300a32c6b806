"""Just enough IAM policy evaluation to ask "would AWS allow this S3 request?", offline.

S3 requests (as an S3 server logs them) are translated into the IAM action, resource and
condition keys AWS authorises them as (docs: "Actions, resources, and condition keys for Amazon
S3"); a request is allowed when an Allow statement matches it and no Deny does. Conditions:
StringEquals and StringLike (absent key: no match), the operators the project's policies use.
An unknown request kind raises, so a client that starts making a new call is noticed.
"""

from __future__ import annotations

import fnmatch
import urllib.parse
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)
    request: str = ""

    def __hash__(self) -> int:
        return hash((self.action, self.resource, tuple(sorted(self.context.items()))))


def s3_checks(request_line: str) -> list[Check]:
    """IAM checks S3 performs for one path-style request line `METHOD /bucket[/key][?query]`."""
    method, target = request_line.split(" ", 1)
    parsed = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    bucket, _, key = urllib.parse.unquote(parsed.path).lstrip("/").partition("/")
    bucket_arn, object_arn = f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{key}"

    def check(action: str, resource: str, **context: str) -> list[Check]:
        return [Check(action, resource, context, request_line)]

    if not key:
        if method == "HEAD":  # HeadBucket: authorised as ListBucket, with no s3:prefix at all
            return check("s3:ListBucket", bucket_arn)
        if method == "GET" and "location" in query:
            return check("s3:GetBucketLocation", bucket_arn)
        if method == "GET" and "uploads" in query:
            return check("s3:ListBucketMultipartUploads", bucket_arn)
        if method == "GET":
            prefix = query.get("prefix", [None])[0]
            return check("s3:ListBucket", bucket_arn, **({"s3:prefix": prefix} if prefix is not None else {}))
        if method == "PUT" and not query:
            return check("s3:CreateBucket", bucket_arn)
    else:
        if method in ("GET", "HEAD") and "uploadId" in query:
            return check("s3:ListMultipartUploadParts", object_arn)
        if method in ("GET", "HEAD"):
            return check("s3:GetObjectVersion" if "versionId" in query else "s3:GetObject", object_arn)
        if method in ("PUT", "POST") and "tagging" not in query:  # put, copy, multipart parts
            return check("s3:PutObject", object_arn)
        if method == "DELETE":
            return check("s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject", object_arn)
    raise ValueError(f"no IAM mapping for S3 request {request_line!r}: add it to iam_policy.s3_checks")


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: dict, context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        for key, expected in keys.items():
            if key not in context:
                return False
            value = context[key]
            if operator == "StringEquals":
                ok = value in _as_list(expected)
            elif operator == "StringLike":
                ok = any(fnmatch.fnmatchcase(value, pattern) for pattern in _as_list(expected))
            else:
                raise ValueError(f"condition operator {operator} is not evaluated here")
            if not ok:
                return False
    return True


def _matches(statement: dict, check: Check) -> bool:
    actions = _as_list(statement.get("Action", []))
    resources = _as_list(statement.get("Resource", []))
    return (
        any(fnmatch.fnmatchcase(check.action, a) for a in actions)
        and any(fnmatch.fnmatchcase(check.resource, r) for r in resources)
        and _condition_holds(statement.get("Condition", {}), check.context)
    )


def allowed(policy: dict, check: Check) -> bool:
    """True if policy allows check: an Allow statement matches and no Deny statement does."""
    statements = _as_list(policy["Statement"])
    if any(s["Effect"] == "Deny" and _matches(s, check) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, check) for s in statements)
