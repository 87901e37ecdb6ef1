"""Files that are never left half-written, and reads that never hang or swallow the disk.

* :func:`atomic_write_text` and :func:`atomic_path` write to a temporary file in the
  target's folder, flush and fsync it, then rename it over the target: a write that fails
  part-way (disk full, a size limit, an interrupted renderer) leaves any existing file
  exactly as it was.
* :func:`read_text_bounded` reads only regular files (a FIFO, a device such as
  ``/dev/zero`` or a directory is refused before it is opened, so nothing blocks), and at
  most ``max_bytes`` of them.
"""

import contextlib
import os
import stat
import tempfile

from .exceptions import SheafError

__all__ = ["DEFAULT_MAX_BYTES", "atomic_path", "atomic_write_text", "read_text_bounded"]

#: files larger than this are refused by the readers unless told otherwise (256 MiB)
DEFAULT_MAX_BYTES = 256 * 2**20


def _name(path):
    return os.fsdecode(os.fspath(path)).replace("\n", "\\n")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Examples
    --------
    >>> import tempfile, os
    >>> from graphsheaf._files import atomic_path
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(target) as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> open(target).read()
    'done'
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise SheafError(f"{path!r} is not a file name") from None
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path) or "output"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise SheafError(f"{_name(path)}: cannot write ({err.strerror or err})") from None
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):  # mkstemp makes 0600 files: keep the old file's
            # mode, or give a new file the mode open() would (0666 minus the umask)
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path)
                     else 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        raise SheafError(f"{_name(path)}: cannot write ({err.strerror or err}); any existing "
                         "file is unchanged") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` so that a failure leaves the old file intact."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()


def read_text_bounded(path, max_bytes=DEFAULT_MAX_BYTES):
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes, or SheafError."""
    try:
        name = _name(path)
        st = os.stat(path)  # follows symlinks: a link to /dev/zero is a device
    except TypeError:
        raise SheafError(f"{path!r} is not a file name") from None
    except OSError as err:
        raise SheafError(f"{name}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "not a regular file")
        raise SheafError(f"{name}: is {kind}, not a file that can be read")
    if st.st_size > max_bytes:
        raise SheafError(f"{name}: {st.st_size:,} bytes is over the limit of {max_bytes:,} bytes "
                         "(pass max_bytes= to read larger files)")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as err:
        raise SheafError(f"{name}: cannot read ({err.strerror or err})") from None
    if len(raw) > max_bytes:
        raise SheafError(f"{name}: over the limit of {max_bytes:,} bytes (pass max_bytes= to "
                         "read larger files)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SheafError(f"{name}: not a UTF-8 text file") from None
