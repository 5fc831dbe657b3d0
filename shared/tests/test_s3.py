"""What an S3 error code says: pure functions over ClientError objects built here (no emulator)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from playcount.core.s3 import MISSING_CODES, PRECONDITION_CODES, is_missing, is_precondition_failed

pytestmark = pytest.mark.fast  # pure: no emulator, no Spark (make check)


def _error(code: str, status: int, operation: str = "GetObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@pytest.mark.parametrize(
    ("code", "status", "operation"),
    [("NoSuchKey", 404, "GetObject"), ("404", 404, "HeadObject"), ("NotFound", 404, "HeadObject")],
)
def test_a_missing_object_is_missing_and_no_failed_precondition(code, status, operation):
    exc = _error(code, status, operation)
    assert is_missing(exc)
    assert not is_precondition_failed(exc)


@pytest.mark.parametrize(
    ("code", "status", "operation"),
    [
        ("PreconditionFailed", 412, "GetObject"),  # If-Match: a newer upload replaced the version
        ("PreconditionFailed", 412, "CopyObject"),  # CopySourceIfMatch
        ("PreconditionFailed", 412, "PutObject"),  # If-None-Match: * found the key
        ("412", 412, "HeadObject"),  # no body: the status is the code
        ("ConditionalRequestConflict", 409, "PutObject"),  # two conditional writes of one key racing
        ("409", 409, "HeadObject"),
    ],
)
def test_a_condition_that_did_not_hold_is_a_failed_precondition_and_not_missing(code, status, operation):
    exc = _error(code, status, operation)
    assert is_precondition_failed(exc)
    assert not is_missing(exc)


@pytest.mark.parametrize(
    "code", ["AccessDenied", "NoSuchBucket", "SlowDown", "InternalError", "BucketAlreadyExists", ""]
)
def test_other_errors_are_neither(code):
    exc = _error(code, 400)
    assert not is_missing(exc)
    assert not is_precondition_failed(exc)


def test_an_error_without_a_code_is_neither():
    exc = ClientError({"ResponseMetadata": {"HTTPStatusCode": 500}}, "GetObject")
    assert not is_missing(exc) and not is_precondition_failed(exc)


def test_the_two_sets_of_codes_do_not_overlap():
    assert not MISSING_CODES & PRECONDITION_CODES
