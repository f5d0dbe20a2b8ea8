"""Exceptions raised by mpk."""


class FormatError(ValueError):
    """The archive is not a valid, safe model archive.

    ``path`` is the location inside the archive (``"weights/coefs_/1"``), or
    ``""`` for a problem with the file as a whole.  ``str(err)`` always starts
    with the path, for example ``"weights/coefs_/1: expected array"``.
    """

    def __init__(self, path, message):
        self.path = path
        self.reason = message
        super().__init__(f"{path or '(archive)'}: {message}")
