"""hq.Error and one subclass per hq_status_t value (include/hq/common.h)."""


class Error(Exception):
    """A libhq call failed. str(error) is the library's one-line message (it names the file and
    what is wrong); `status` is the hq_status_t value."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class IoError(Error):
    """HQ_ERR_IO: the operating system refused a read, write, open or rename."""
    status = -1


class FormatError(Error):
    """HQ_ERR_FORMAT: input bytes are malformed."""
    status = -2


class UnsupportedError(Error):
    """HQ_ERR_UNSUPPORTED: well-formed input that hq does not handle."""
    status = -3


class NoMemoryError(Error):
    """HQ_ERR_NOMEM: an allocation failed."""
    status = -4


class ArgumentError(Error):
    """HQ_ERR_ARGUMENT: an invalid argument."""
    status = -5


class NotFoundError(Error):
    """HQ_ERR_NOT_FOUND: a named member, layer, key or file does not exist."""
    status = -6


class LimitError(Error):
    """HQ_ERR_LIMIT: input exceeds a size limit hq enforces."""
    status = -7


class InvalidError(Error):
    """HQ_ERR_INVALID: well-formed input whose content is inconsistent."""
    status = -8


class StateError(Error):
    """HQ_ERR_STATE: the archive is not in the state the call needs."""
    status = -9


_BY_STATUS = {cls.status: cls for cls in (IoError, FormatError, UnsupportedError, NoMemoryError,
                                          ArgumentError, NotFoundError, LimitError, InvalidError,
                                          StateError)}


def from_status(status, message):
    """The Error subclass for a status (plain Error for a value this package does not know)."""
    return _BY_STATUS.get(status, Error)(message, status)
