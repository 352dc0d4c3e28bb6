"""The exceptions of the saedict client.

Every error the server (or gRPC) reports is raised as a subclass of
:class:`Error` chosen by its status code, carrying the code and the server's
message unchanged. :class:`Error` is also a :class:`grpc.RpcError` with
``code()`` and ``details()``, so code written against the raw stubs
(``except grpc.RpcError as e: e.code()``) keeps working.

Arguments the client can check before sending anything (shapes, dtypes,
names of options) raise :class:`ValueError` instead.

>>> import grpc, saedict
>>> e = saedict.errors.from_status(grpc.StatusCode.NOT_FOUND, "dictionary 'x' not found")
>>> isinstance(e, saedict.NotFound), isinstance(e, grpc.RpcError)
(True, True)
>>> e.code() is grpc.StatusCode.NOT_FOUND, e.message
(True, "dictionary 'x' not found")
"""
from typing import Optional

import grpc

__all__ = [
    "Error", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
    "from_status", "from_rpc_error",
]


class Error(grpc.RpcError):
    """A call failed with a gRPC status.

    Attributes:
      status_code: the :class:`grpc.StatusCode` (also returned by ``code()``;
        ``code`` is a method so that this stays a drop-in ``grpc.RpcError``).
      message: the server's message, unchanged (also ``details()``).
      method: the RPC that failed (e.g. ``"Encode"``), or None.
      attempts: how many times the call was sent (more than 1 after retries
        on UNAVAILABLE).
    """

    status_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, status_code: Optional[grpc.StatusCode] = None,
                 method: Optional[str] = None, attempts: int = 1, rpc_error=None):
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code
        self.message = message
        self.method = method
        self.attempts = attempts
        self._rpc_error = rpc_error

    def code(self) -> grpc.StatusCode:
        """The status code, as ``grpc.RpcError.code()`` returns it."""
        return self.status_code

    def details(self) -> str:
        """The server's message, as ``grpc.RpcError.details()`` returns it."""
        return self.message

    def trailing_metadata(self):
        """The call's trailing metadata, when the error came from a call."""
        inner = getattr(self._rpc_error, "trailing_metadata", None)
        return inner() if callable(inner) else None

    def debug_error_string(self) -> Optional[str]:
        """gRPC's debug string for the failure, when the error came from a call."""
        inner = getattr(self._rpc_error, "debug_error_string", None)
        return inner() if callable(inner) else None

    def __str__(self) -> str:
        where = f"{self.method}: " if self.method else ""
        return f"{where}{self.status_code.name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, method={self.method!r})"


class Cancelled(Error):
    status_code = grpc.StatusCode.CANCELLED


class Unknown(Error):
    status_code = grpc.StatusCode.UNKNOWN


class InvalidArgument(Error):
    """A bad request the server found: shape, dtype, k, NaN, a bad file."""
    status_code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(Error):
    status_code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(Error):
    """Unknown dictionary, document, feature or corpus."""
    status_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(Error):
    """The id is taken (load with replace=True to replace it)."""
    status_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(Error):
    """The token's role is too low, or a path lies outside --dictionary_root."""
    status_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(Error):
    """The encode queue is full, a message is too big, or the disk is full."""
    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(Error):
    """The state does not allow it yet (e.g. a similarity index not READY)."""
    status_code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(Error):
    status_code = grpc.StatusCode.ABORTED


class OutOfRange(Error):
    status_code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(Error):
    status_code = grpc.StatusCode.UNIMPLEMENTED


class Internal(Error):
    """A server-side failure (e.g. storage corruption)."""
    status_code = grpc.StatusCode.INTERNAL


class Unavailable(Error):
    """No server answered, or it is draining; idempotent calls retry these."""
    status_code = grpc.StatusCode.UNAVAILABLE


class DataLoss(Error):
    status_code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(Error):
    """No token, or a token the server does not know."""
    status_code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE = {cls.status_code: cls for cls in (
    Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
    PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange, Unimplemented,
    Internal, Unavailable, DataLoss, Unauthenticated)}


def from_status(code: grpc.StatusCode, message: str, method: Optional[str] = None,
                attempts: int = 1, rpc_error=None) -> Error:
    """The Error subclass for `code`, carrying `message` unchanged."""
    cls = _BY_CODE.get(code, Error)
    return cls(message, status_code=code, method=method, attempts=attempts, rpc_error=rpc_error)


def from_rpc_error(e: grpc.RpcError, method: Optional[str] = None, attempts: int = 1) -> Error:
    """The Error for a grpc.RpcError raised by a stub (itself when already one)."""
    if isinstance(e, Error):
        return e
    code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
    details = e.details() if callable(getattr(e, "details", None)) else str(e)
    return from_status(code or grpc.StatusCode.UNKNOWN, details or "", method, attempts, e)
