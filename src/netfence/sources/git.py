"""Read manifests as they were at a git ref, without a checkout or any work-tree change.

``git ls-tree`` lists the files under each path at the ref; ``git cat-file --batch`` reads them
in one process. File names are reported as ``REF:path`` so diagnostics cite the ref.
"""

from __future__ import annotations

import os
import subprocess

from netfence.errors import Diagnostic, InputError, Severity, SourceRef
from netfence.sources.files import SUFFIXES, TextFile


def _git(args: list[str], cwd: str, stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True,
                              timeout=120, check=False)
    except FileNotFoundError:
        raise InputError("git is not installed (needed for --base/--head refs)") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"git {' '.join(args[:2])}: {msg[-1] if msg else 'failed'}", (
            Diagnostic(Severity.ERROR, "git", f"git {' '.join(args)}: "
                       f"{msg[-1] if msg else 'failed'}", SourceRef("git")),))
    return proc.stdout


def read_at_ref(ref: str, paths: list[str], recursive: bool,
                cwd: str | None = None) -> tuple[list[TextFile], list[Diagnostic]]:
    here = cwd or os.getcwd()
    top = _git(["rev-parse", "--show-toplevel"], here).decode().strip()
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], here)
    diags: list[Diagnostic] = []
    wanted: list[str] = []
    for p in paths:
        rel = os.path.relpath(os.path.abspath(os.path.join(here, p)), top)
        rel = "" if rel == "." else rel
        listed = _git(["ls-tree", "-r", "--name-only", "-z", ref, "--", rel or "."], top)
        names = sorted(n for n in listed.decode().split("\0") if n)
        if not names:
            diags.append(Diagnostic(Severity.ERROR, "file-missing",
                                    f"no files under '{p}' at {ref}", SourceRef(f"{ref}:{p}")))
            continue
        for name in names:
            inner = name[len(rel):].lstrip("/") if rel and name != rel else ""
            if not recursive and "/" in inner:
                continue
            if name == rel or name.endswith(SUFFIXES):
                wanted.append(name)
    if not wanted:
        return [], diags
    batch = "".join(f"{ref}:{n}\n" for n in wanted).encode()
    raw = _git(["cat-file", "--batch"], top, batch)
    out: list[TextFile] = []
    pos = 0
    for name in wanted:
        nl = raw.index(b"\n", pos)
        header = raw[pos:nl].decode().split()
        pos = nl + 1
        if len(header) < 3 or header[1] != "blob":
            diags.append(Diagnostic(Severity.ERROR, "file-missing", f"not a file at {ref}",
                                    SourceRef(f"{ref}:{name}")))
            continue
        size = int(header[2])
        body = raw[pos:pos + size]
        pos += size + 1
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            diags.append(Diagnostic(Severity.ERROR, "encoding", "not UTF-8 text",
                                    SourceRef(f"{ref}:{name}")))
            continue
        out.append(TextFile(f"{ref}:{name}", text, name.endswith(".json")))
    return out, diags
