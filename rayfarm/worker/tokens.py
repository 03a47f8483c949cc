"""The worker token from a file (``--token-file``), so that it never appears on a command line.

The file holds the token alone (surrounding white space is ignored). It must not be readable by every user
of the machine: a node refuses a world-readable token file, as ssh refuses a world-readable key.
"""

import os
import stat
from pathlib import Path


class TokenError(Exception):
    """The token file cannot be used; the message says why and what to do."""


def read_token_file(path: str | os.PathLike) -> str:
    path = Path(path).expanduser()
    try:
        info = path.stat()
        text = path.read_text("utf-8").strip()
    except FileNotFoundError:
        raise TokenError(f"The token file {path} does not exist; write the output of `rayfarm worker-token` (run "
                         f"on the server's machine) into it, then chmod 600 {path}.") from None
    except PermissionError:
        raise TokenError(f"The token file {path} cannot be read by this user; make the node's user its owner "
                         f"(chown) and chmod 600 {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"The token file {path} cannot be read ({exc}).") from None
    if info.st_mode & stat.S_IROTH:
        raise TokenError(f"The token file {path} can be read by every user of this machine; chmod 600 {path} "
                         f"and make the node's user its owner.")
    if not text or len(text.split()) != 1:
        raise TokenError(f"The token file {path} must hold the worker token alone, as `rayfarm worker-token` "
                         f"prints it.")
    return text
