"""Writing outputs without ever losing a user's files.

Three rules every command follows (docs/safety.md):

* **Scratch, then rename.** Files and folders are written under a scratch name in the target's own folder
  and renamed into place when complete (:func:`atomic_output`, :func:`replace_folder`), so a crash or a
  kill never leaves a half-written file under the real name. Scratch names carry the host and the process
  id (``.tfreg-partial-<host>-<pid>-<random>-<name>``); :func:`clean_stale_scratch` removes the ones
  whose process is gone (a killed run), and nothing else, on the next run in that folder.
* **Never over an input.** An output that resolves to one of the command's inputs (same path after
  symlinks, or the same file through a hard link) is refused (:func:`check_not_input`); a folder that
  would be replaced must not hold any input (:func:`check_folder_holds_no_input`).
* **Replace only our own folders.** A folder that a command replaces when asked (``--overwrite``) must
  carry the marker file tfreg writes into every output folder it creates (:func:`write_marker`,
  :func:`check_replaceable`); a folder without it is the user's and is refused.
* **Incomplete until it holds a result.** A folder that a long run fills in place (a training log folder)
  carries :data:`INCOMPLETE_MARKER`, naming the host and the process, until its first result is written
  (:func:`mark_incomplete`, :func:`clear_incomplete`). A folder still marked whose process is gone was left
  by a run killed before any result (:func:`incomplete_state`): it holds nothing worth keeping, and the
  next run may reuse it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import uuid
from datetime import datetime, timezone
from typing import Dict, Iterator, List, Mapping, Optional

#: Prefix of every scratch file or folder tfreg writes (hidden, recognisable by the next run).
SCRATCH_PREFIX = ".tfreg-partial-"
#: Marker file in every output folder tfreg creates and may later replace.
OUTPUT_MARKER = ".tfreg-output"
#: Marker file of a folder whose run has not written its first result yet (JSON: tool, host, pid, created).
INCOMPLETE_MARKER = ".tfreg-incomplete"

# host names may hold '-', the process id and the random part do not
_SCRATCH_RE = re.compile(r"^\.tfreg-partial-(?P<host>.+)-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})-(?P<name>.*)$")


def _host() -> str:
    """This machine's name with characters unsafe in a file name replaced (``-`` is kept)."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"


def scratch_path(target: str) -> str:
    """A fresh scratch path next to ``target``: same folder, hidden, ending with ``target``'s base name.

    Keeping the base name at the end keeps the suffix, so writers that choose the format from it
    (SimpleITK's ``.nii.gz``, ``.mha``) write the right format.
    """
    folder, name = os.path.split(os.path.abspath(target))
    return os.path.join(folder, f"{SCRATCH_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{name}")


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a process of another user counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as err:  # pragma: no cover - platform specific
        return err.errno != errno.ESRCH
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def clean_stale_scratch(folder: str) -> List[str]:
    """Remove the scratch files and folders in ``folder`` left by killed tfreg processes on this machine.

    Only entries named by :func:`scratch_path` are considered, and of those only the ones whose host is
    this machine and whose process no longer runs (a run in progress, or one on another machine sharing
    the folder, is left alone). Returns the paths removed; a missing folder removes nothing.
    """
    if not os.path.isdir(folder):
        return []
    removed = []
    host = _host()
    for entry in sorted(os.listdir(folder)):
        match = _SCRATCH_RE.match(entry)
        if not match or match.group("host") != host or _process_alive(int(match.group("pid"))):
            continue
        path = os.path.join(folder, entry)
        _remove(path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yield a scratch path to write ``path``'s content to; on success it is renamed over ``path``.

    On an exception the scratch file is removed and ``path`` is left as it was. The parent folder is
    created when missing. ``os.replace`` is atomic on one file system, and the scratch file lives in the
    target's folder, so readers see either the old file or the complete new one.
    """
    path = os.path.abspath(os.path.expanduser(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scratch = scratch_path(path)
    try:
        yield scratch
        if not os.path.lexists(scratch):
            raise FileNotFoundError(f"nothing was written for {path} (scratch file {scratch} missing)")
        os.replace(scratch, path)
    except BaseException:
        _remove(scratch)
        raise


def _same(a: str, b: str) -> bool:
    """Same resolved path, or the same existing file (hard links, bind mounts)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(outputs: Mapping[str, Optional[str]], inputs: Mapping[str, Optional[str]]) -> None:
    """Refuse an output that is one of the inputs.

    Args:
        outputs: role (e.g. ``--out``) -> output path; None entries are skipped.
        inputs: role (e.g. ``--image``) -> input path; None entries are skipped.

    Raises:
        FileExistsError: naming both roles and the path.
    """
    for out_role, out in outputs.items():
        if not out:
            continue
        for in_role, given in inputs.items():
            if given and _same(out, given):
                raise FileExistsError(
                    f"{out_role} {out} is the input {in_role} {given}: writing it would destroy the input; "
                    "choose another output path"
                )


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or os.path.commonpath([path, folder]) == folder


def check_folder_holds_no_input(folder: str, inputs: Mapping[str, Optional[str]], role: str = "output folder") -> None:
    """Refuse an output ``folder`` that is, or contains, one of the ``inputs`` (files or folders).

    Raises:
        FileExistsError: naming the folder, the input's role and its path.
    """
    for in_role, given in inputs.items():
        if given and _inside(given, folder):
            raise FileExistsError(
                f"{role} {folder} holds the input {in_role} {given}: replacing or writing into it could "
                "destroy the input; choose another output folder"
            )


def write_marker(folder: str, tool: str, extra: Optional[Dict[str, object]] = None) -> str:
    """Write :data:`OUTPUT_MARKER` into ``folder``: it was created by ``tool`` and may be replaced by it."""
    from tfreg import __version__

    content = {"tool": tool, "tfreg_version": __version__, "created": datetime.now(timezone.utc).isoformat()}
    content.update(extra or {})
    path = os.path.join(folder, OUTPUT_MARKER)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(content, stream, indent=1, sort_keys=True)
        stream.write("\n")
    return path


def read_marker(folder: str) -> Optional[Dict[str, object]]:
    """The marker of ``folder`` (None when it has none or it cannot be read as tfreg's)."""
    path = os.path.join(folder, OUTPUT_MARKER)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            content = json.load(stream)
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and "tool" in content else None


def check_replaceable(folder: str, tool: str) -> None:
    """Refuse to replace ``folder`` unless ``tool`` wrote it (its marker says so).

    Raises:
        FileExistsError: the folder is a symlink, not a folder, has no marker, or another tool's marker.
    """
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise FileExistsError(
            f"{folder} exists and is not a folder written by {tool} (a file or a link): refusing to replace it; "
            "choose another output name"
        )
    marker = read_marker(folder)
    if marker is None or marker.get("tool") != tool:
        found = "no tfreg marker" if marker is None else f"the marker of {marker.get('tool')}"
        raise FileExistsError(
            f"{folder} was not written by {tool} ({found} file {OUTPUT_MARKER}): --overwrite replaces only "
            f"{tool}'s own output folders; move it away or choose another output name"
        )


def mark_incomplete(folder: str, tool: str) -> str:
    """Write :data:`INCOMPLETE_MARKER` into ``folder`` (created when missing): this process of ``tool`` has
    started filling it and has no result in it yet. Returns the marker's path."""
    os.makedirs(folder, exist_ok=True)
    content = {
        "tool": tool,
        "host": _host(),
        "pid": os.getpid(),
        "created": datetime.now(timezone.utc).isoformat(),
    }
    path = os.path.join(folder, INCOMPLETE_MARKER)
    with atomic_output(path) as scratch, open(scratch, "w", encoding="utf-8") as stream:
        json.dump(content, stream, indent=1, sort_keys=True)
        stream.write("\n")
    return path


def clear_incomplete(folder: str) -> bool:
    """Remove ``folder``'s :data:`INCOMPLETE_MARKER` (its first result is written); False when it had none."""
    try:
        os.remove(os.path.join(folder, INCOMPLETE_MARKER))
    except FileNotFoundError:
        return False
    return True


def incomplete_state(folder: str) -> Optional[str]:
    """Whether ``folder`` is marked incomplete (:func:`mark_incomplete`), and by whom.

    Returns:
        None: no marker. ``"abandoned"``: the marking process ran on this machine and is gone (killed, or
        crashed without cleaning up). ``"running"``: the process still runs, or ran on another machine (whose
        processes cannot be seen from here), or the marker cannot be read; the text of the error to give is
        :func:`describe_incomplete`.
    """
    path = os.path.join(folder, INCOMPLETE_MARKER)
    if not os.path.lexists(path):
        return None
    content = _read_incomplete(folder)
    if content is None:
        return "running"
    if content.get("host") == _host() and not _process_alive(int(content["pid"])):
        return "abandoned"
    return "running"


def _read_incomplete(folder: str) -> Optional[Dict[str, object]]:
    try:
        with open(os.path.join(folder, INCOMPLETE_MARKER), encoding="utf-8") as stream:
            content = json.load(stream)
        int(content["pid"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return content if isinstance(content, dict) else None


def describe_incomplete(folder: str) -> str:
    """Who marked ``folder`` incomplete, for an error message (``"process 123 of tfreg_train on host a"``)."""
    content = _read_incomplete(folder)
    if content is None:
        return f"an unreadable {INCOMPLETE_MARKER} file"
    return f"process {content['pid']} of {content.get('tool', '?')} on host {content.get('host', '?')}"


def replace_folder(new: str, target: str) -> None:
    """Move the complete folder ``new`` to ``target``, replacing a ``target`` that already exists.

    The old folder is first renamed to a scratch name (so ``target`` is never missing its content for
    longer than two renames) and deleted only once the new one is in place.
    """
    old = None
    if os.path.lexists(target):
        old = scratch_path(target)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        _remove(old)


__all__ = [
    "SCRATCH_PREFIX",
    "OUTPUT_MARKER",
    "INCOMPLETE_MARKER",
    "scratch_path",
    "clean_stale_scratch",
    "atomic_output",
    "check_not_input",
    "check_folder_holds_no_input",
    "write_marker",
    "read_marker",
    "check_replaceable",
    "replace_folder",
    "mark_incomplete",
    "clear_incomplete",
    "incomplete_state",
    "describe_incomplete",
]
