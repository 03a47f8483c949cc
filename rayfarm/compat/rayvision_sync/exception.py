"""The exceptions of ``rayvision_sync.exception``: the official classes when that package is installed.

Reusing them means a script's ``except rayvision_sync.exception.DownloadFailed`` still catches what the
drop-in raises; without the official package, classes with the same names and attributes stand in.
"""

try:
    from rayvision_sync.exception import (
        DownloadFailed,
        RayvisionError,
        UnsupportedDatabaseError,
        UnsupportedEngineType,
    )
except ImportError:

    class RayvisionError(Exception):
        """Raise RayvisionError if something wrong (``error_code`` and ``error`` as in rayvision_sync)."""

        def __init__(self, error_code, error, *args, **kwargs):
            super().__init__(self, error, *args, **kwargs)
            self.error_code = error_code
            self.error = error

    class UnsupportedDatabaseError(Exception):
        """The local database supports only Redis and Sqlite."""

    class UnsupportedEngineType(Exception):
        """Engine Only Support aspera and raysyncproxy."""

    class DownloadFailed(Exception):
        """Download failed (``error`` holds the message)."""

        def __init__(self, error, *args, **kwargs):
            super().__init__(self, error, *args, **kwargs)
            self.error = error

__all__ = ["DownloadFailed", "RayvisionError", "UnsupportedDatabaseError", "UnsupportedEngineType"]
