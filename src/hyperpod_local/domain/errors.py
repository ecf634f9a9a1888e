"""The errors a handler can raise, named by their AWS wire code.

They live in domain/ because business rules raise them; wire/ turns them into HTTP.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error the client sees as an AWS JSON error response."""

    code: str = "InternalFailure"
    status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(ServiceError):
    code = "ValidationException"


class ResourceNotFound(ServiceError):
    code = "ResourceNotFound"


class ResourceInUse(ServiceError):
    code = "ResourceInUse"


class ResourceLimitExceeded(ServiceError):
    code = "ResourceLimitExceeded"


class ConflictError(ServiceError):
    code = "ConflictException"


class ThrottlingError(ServiceError):
    # botocore retries this code with backoff, which is what a busy store wants.
    code = "ThrottlingException"


class SerializationError(ServiceError):
    code = "SerializationException"


class UnknownOperation(ServiceError):
    code = "UnknownOperationException"


class NotImplementedOperation(ServiceError):
    # 501 is outside the status codes botocore retries (500, 502, 503, 504), so a client
    # calling an operation we lack fails at once instead of backing off five times.
    code = "NotImplemented"
    status = 501


class InternalFailure(ServiceError):
    code = "InternalFailure"
    status = 500


def cluster_not_found(given: str) -> ResourceNotFound:
    return ResourceNotFound(f"Could not find cluster '{given}'.")
