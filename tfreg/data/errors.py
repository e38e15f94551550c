"""Errors raised for bad data: each message names the offending file, folder, key or config entry.

Both are ``ValueError`` subclasses, as DeepReg raised ``ValueError`` (or failed an ``assert``) for the same
problems, so code that caught those keeps working.
"""


class DataError(ValueError):
    """Data on disk that tfreg cannot use: unreadable or inconsistent files, bad values, bad layout."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A configured folder or file that does not exist, or a folder that holds no usable file."""


__all__ = ["DataError", "DataNotFoundError"]
