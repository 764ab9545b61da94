"""Find and read manifest files: lexical order, cycles, FIFOs and devices handled (INPUT.md)."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from netfence.errors import Diagnostic, Severity, SourceRef

SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class TextFile:
    name: str
    text: str
    is_json: bool


def _diag(sev: Severity, code: str, path: str, msg: str) -> Diagnostic:
    return Diagnostic(sev, code, msg, SourceRef(path))


def read_inputs(paths: list[str], recursive: bool,
                stdin_text: str | None = None) -> tuple[list[TextFile], list[Diagnostic]]:
    """Expand ``-f`` arguments into readable files, in lexical path order per argument."""
    out: list[TextFile] = []
    diags: list[Diagnostic] = []
    for arg in paths:
        if arg == "-":
            text = stdin_text if stdin_text is not None else sys.stdin.read()
            out.append(TextFile("<stdin>", text, text.lstrip().startswith(("{", "["))))
            continue
        p = Path(arg)
        try:
            st = p.stat()
        except RuntimeError:
            diags.append(_diag(Severity.ERROR, "file-loop", arg, "symbolic link loop"))
            continue
        except OSError as exc:
            if p.is_symlink():
                msg = f"broken or looping symbolic link: {exc.strerror}"
                diags.append(_diag(Severity.ERROR, "file-loop", arg, msg))
            else:
                diags.append(_diag(Severity.ERROR, "file-missing", arg,
                                   f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            found = _walk(p, recursive, diags, set())
            if not found:
                diags.append(_diag(Severity.ERROR, "no-files", arg,
                                   "directory holds no .yaml, .yml or .json files"))
            for f in found:
                _read(f, out, diags)
        elif stat.S_ISREG(st.st_mode):
            _read(p, out, diags)
        else:
            diags.append(_diag(Severity.WARNING, "not-a-file", arg,
                               "not a regular file (FIFO, socket or device): skipped"))
    return out, diags


def _walk(d: Path, recursive: bool, diags: list[Diagnostic],
          seen: set[tuple[int, int]]) -> list[Path]:
    try:
        st = d.stat()
    except OSError as exc:
        diags.append(_diag(Severity.ERROR, "file-missing", str(d), f"cannot read: {exc}"))
        return []
    ident = (st.st_dev, st.st_ino)
    if ident in seen:
        diags.append(_diag(Severity.WARNING, "dir-cycle", str(d),
                           "directory already read (symbolic link cycle): skipped"))
        return []
    seen.add(ident)
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError as exc:
        diags.append(_diag(Severity.ERROR, "file-unreadable", str(d), f"cannot list: {exc}"))
        return []
    for e in entries:
        path = Path(e.path)
        try:
            est = path.stat()
        except OSError as exc:
            if e.name.endswith(SUFFIXES):
                diags.append(_diag(Severity.ERROR, "file-loop", str(path),
                                   f"broken or looping symbolic link: {exc.strerror}"))
            continue
        if stat.S_ISDIR(est.st_mode):
            if recursive:
                found.extend(_walk(path, recursive, diags, seen))
            continue
        if not e.name.endswith(SUFFIXES):
            continue
        if not stat.S_ISREG(est.st_mode):
            diags.append(_diag(Severity.WARNING, "not-a-file", str(path),
                               "not a regular file (FIFO, socket or device): skipped"))
            continue
        found.append(path)
    return found


def _read(p: Path, out: list[TextFile], diags: list[Diagnostic]) -> None:
    try:
        data = p.read_bytes()
    except OSError as exc:
        diags.append(_diag(Severity.ERROR, "file-unreadable", str(p),
                           f"cannot read: {exc.strerror or exc}"))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        diags.append(_diag(Severity.ERROR, "encoding", str(p), f"not UTF-8 text: {exc.reason}"))
        return
    out.append(TextFile(str(p), text, p.suffix == ".json"))
