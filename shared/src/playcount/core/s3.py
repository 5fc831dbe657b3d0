"""What an S3 error says about the object: it is not there, or a condition on it did not hold.

S3 answers a request with an XML error whose `Code` botocore puts in
`exc.response["Error"]["Code"]`; a HEAD has no body, so for it botocore uses the HTTP status
as the code ("404", "412"). The emulators (moto, LocalStack) answer with the same codes.

Missing (`MISSING_CODES`):
- `NoSuchKey`: a GET, copy or conditional request named a key that does not exist;
- `404`: the same answer to a HEAD (`head_object`);
- `NotFound`: the code some botocore versions and emulators give a HEAD's 404.

Precondition failed (`PRECONDITION_CODES`):
- `PreconditionFailed` (HTTP 412): the condition of a request did not hold: `If-Match` /
  `CopySourceIfMatch` named an ETag the key no longer has (a newer upload replaced it), or
  `If-None-Match: *` found the key already there;
- `412`: the same answer to a HEAD;
- `ConditionalRequestConflict` (HTTP 409): a conditional write raced another write of the same
  key still in flight; S3 decided neither, and the caller must read again before retrying,
  exactly as after a 412;
- `409`: the same answer without a body.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_missing(exc: ClientError) -> bool:
    """Whether an S3 error says the object (or key) does not exist."""
    return error_code(exc) in MISSING_CODES


def is_precondition_failed(exc: ClientError) -> bool:
    """Whether an S3 error says a conditional request's condition did not hold (412, or a 409 race)."""
    return error_code(exc) in PRECONDITION_CODES
