"""User-error and output-file helpers shared by every script.

A user mistake raises UsageError; only a script's main() catches it, prints one
line to stderr and returns 2. Anything else is a bug and keeps its traceback.
Outputs are written to a temporary file in the target directory, fsynced, then
renamed over the target, so a crash (kill -9 included) never leaves a half file.
"""

import contextlib
import os
import sys
import tempfile

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: a missing file, a wrong schema, a bad flag."""


def run(main, argv=None, prog=None):
    """Call main(argv); turn UsageError into one stderr line and exit status 2."""
    prog = prog or os.path.basename(sys.argv[0])
    try:
        return main(argv)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def check_writable_dir(path):
    """Create `path` if needed; raise UsageError if it cannot hold our outputs."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create output directory {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"output directory {path} is not writable")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.

    On any exception the temporary file is removed and `path` is untouched.
    """
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide outputs from other users
        os.replace(tmp, path)
        fsync_dir(d)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def fsync_dir(d):
    """Make a rename in directory `d` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path, text):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
