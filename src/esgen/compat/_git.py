"""Read schema files as they were at a git ref, straight from the object database.

No checkout, no clone, no temporary files: `git ls-tree` lists the folder at the commit and
one `git cat-file --batch` process streams every blob. A ref that is not there (often: a
shallow CI clone) is an error that says how to fetch it.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from esgen._suggest import closest
from esgen.compat._errors import GitError

__all__ = ["GitSnapshot", "read_tree", "repository_root"]

_SUFFIXES = (".yaml", ".yml")


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False, env=env
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH); --against REF needs it") from None


def repository_root(path: Path) -> Path:
    """The top folder of the work tree that holds `path`."""
    where = path if path.is_dir() else path.parent
    result = _git(where, "rev-parse", "--show-toplevel")
    if result.returncode != 0 and b"dubious ownership" in result.stderr:
        # Common in CI containers, where the checkout belongs to another user.
        raise GitError(
            f"git refuses the repository at {where}: it belongs to another user. Mark it "
            f"safe: `git config --global --add safe.directory {_top_folder(where)}`"
        )
    if result.returncode != 0:
        raise GitError(
            f"{where} is not inside a git repository; --against needs a git ref there, "
            "or pass a folder (--against PATH) or compare with esgen.lock (no --against)"
        )
    return Path(os.fsdecode(result.stdout.strip())).resolve()


def _top_folder(path: Path) -> str:
    """The repository's top folder as git names it in safe.directory."""
    # Trusting every folder for this one read-only question, to learn the name to trust.
    top = _git(path, "-c", "safe.directory=*", "rev-parse", "--show-toplevel")
    return os.fsdecode(top.stdout.strip()) if top.returncode == 0 else str(path.resolve())


@dataclass(frozen=True)
class GitSnapshot:
    """The schema folder's files at one commit; paths are relative to the repository root."""

    root: Path
    ref: str
    commit: str
    folder: str  # the schema folder, relative to `root`, posix style ("" for the root)
    files: dict[str, str]

    def read(self, path: Path) -> str:
        """A file the schemas refer to (a JSON Schema), as it was at the same commit."""
        relative = posixpath.normpath(Path(os.path.relpath(path, self.root)).as_posix())
        if relative.startswith("../"):
            raise OSError(f"{path} is outside the repository")
        listed = _git(self.root, "ls-tree", "-z", self.commit, "--", relative)
        if listed.stdout.startswith(b"120000 "):
            # A link's blob is its target's name; what it points at is not read, as on disk.
            raise OSError(
                f"{relative} is a symbolic link at {self.ref}, which esgen does not follow"
            )
        result = _git(self.root, "cat-file", "blob", f"{self.commit}:{relative}")
        if result.returncode != 0:
            raise OSError(f"{relative} does not exist at {self.ref}")
        return result.stdout.decode("utf-8")


# What the user typed says what kind of ref it is, which decides how it can be fetched.
_FULL_HASH = re.compile(r"[0-9a-f]{40}")
_SHORT_HASH = re.compile(r"[0-9a-f]{7,39}")
_TAG_LIKE = re.compile(r"v?[0-9]+(?:\.[0-9]+)*(?:[-+][0-9A-Za-z.-]+)?")
_REVISION = re.compile(r"[~^:]|@\{")  # HEAD~2, main^, @{upstream}: relative to another
# Remote names common enough that `origin/main` means "branch main of origin" even when
# no remote of that name is configured; any other `a/b` may be a branch called `a/b`.
_USUAL_REMOTES = ("origin", "upstream")
_UNSHALLOW = "`git fetch --unshallow` (with actions/checkout: `fetch-depth: 0`)"


@dataclass(frozen=True)
class _Wanted:
    """A ref that is not here, read from how it is spelt."""

    name: str  # on the remote: `main`, `v1.2`, or a commit hash
    kind: str  # "branch", "tag", "commit", or "branch?" / "tag?" when it could be either
    remote: str | None = None  # the remote the ref names, if it names one


def _wanted(ref: str, remotes: list[str]) -> _Wanted:
    for prefix, kind in (("refs/heads/", "branch"), ("heads/", "branch"), ("refs/tags/", "tag"),
                         ("tags/", "tag")):  # fmt: skip
        if ref.startswith(prefix):
            return _Wanted(ref[len(prefix) :], kind)
    remote, _, name = ref.removeprefix("refs/remotes/").partition("/")
    if name and (remote in remotes or remote in _USUAL_REMOTES or ref.startswith("refs/remotes/")):
        return _Wanted(name, "branch", remote)
    if _FULL_HASH.fullmatch(ref) or _SHORT_HASH.fullmatch(ref):
        return _Wanted(ref, "commit")
    return _Wanted(ref, "tag?" if _TAG_LIKE.fullmatch(ref) else "branch?")


def _how(remote: str, wanted: _Wanted, shallow: bool) -> str:
    """The git command(s) that bring `wanted` from `remote`, and the ref to compare with."""
    fetch = f"git fetch {'--depth=1 ' if shallow else ''}{remote}"
    name = wanted.name
    branch = (
        f"`{fetch} {name}:refs/remotes/{remote}/{name}` and compare with "
        f"`--against {remote}/{name}`"
    )
    tag = f"`{fetch} tag {name}` and compare with `--against {name}`"
    if wanted.kind == "commit" and _FULL_HASH.fullmatch(name):
        return f"`{fetch} {name}`"
    if wanted.kind == "commit":
        # Servers hand out commits by full hash only, never by an abbreviation.
        return (
            f"`git fetch {remote}` (its branches; an abbreviated hash cannot be fetched by "
            f"itself, the full one can: `{fetch} <40-character hash>`)"
        )
    if wanted.kind == "branch":
        return branch
    if wanted.kind == "tag":
        return tag
    if wanted.kind == "tag?":
        return f"{tag} (a branch: {branch})"
    return f"{branch} (a tag: {tag})"


def _missing_ref(root: Path, ref: str, shallow: bool) -> str:
    """Why `ref` is not here and how to get it: fetched from the remote that has it, from
    another remote, or after adding one; in a shallow clone, the history may be missing."""
    head = (
        f"git ref {ref!r} is not in this clone, which is shallow (CI checkouts usually are)"
        if shallow
        else f"unknown git ref {ref!r}: no branch, tag or commit of that name here"
    )
    if _REVISION.search(ref):
        if shallow:
            return f"{head}; fetch the whole history: {_UNSHALLOW}"
        return (
            f"{head}: the history does not reach that far, or what it counts from does not "
            "exist (`git log --oneline` lists the commits)"
        )
    remotes = _git(root, "remote").stdout.decode().split()
    wanted = _wanted(ref, remotes)
    if wanted.kind != "commit" and wanted.remote is None:
        for remote in remotes:
            if _exists(root, f"refs/remotes/{remote}/{ref}"):
                return f"{head}, but {remote} has it: compare with `--against {remote}/{ref}`"
    known = _git(root, "for-each-ref", "--format=%(refname:short)").stdout.decode().split()
    if wanted.remote is None:
        typo = closest(ref, known)
    else:  # compare names on that remote only: they all share its prefix
        prefix = f"{wanted.remote}/"
        near = closest(wanted.name, [k.removeprefix(prefix) for k in known if k.startswith(prefix)])
        typo = None if near is None else prefix + near
    if typo is not None:
        return f"{head}; did you mean {typo!r}?"
    unshallow = f"; or fetch the whole history: {_UNSHALLOW}" if shallow else ""
    if not remotes:
        remote = wanted.remote or "origin"  # the one the user named, when they named one
        return (
            f"{head}. This repository has no remote to fetch it from; add the repository it "
            f"was published in: `git remote add {remote} URL`, then fetch it: "
            f"{_how(remote, wanted, shallow)}"
        )
    default = "origin" if "origin" in remotes else remotes[0]
    if wanted.remote is not None and wanted.remote not in remotes:
        return (
            f"{head}, and no remote here is called {wanted.remote!r} (remotes: "
            f"{', '.join(remotes)}). If it exists on {default}, fetch it: "
            f"{_how(default, wanted, shallow)}; or add {wanted.remote}: "
            f"`git remote add {wanted.remote} URL`{unshallow}"
        )
    remote = wanted.remote or default
    if shallow:
        return f"{head}. Fetch it: {_how(remote, wanted, shallow)}{unshallow}"
    return f"{head}. If it exists on {remote}, fetch it: {_how(remote, wanted, shallow)}"


def _exists(root: Path, ref: str) -> bool:
    return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode == 0


def _resolve(root: Path, ref: str) -> str:
    if ref.startswith("-") or not ref.strip():
        raise GitError(f"{ref!r} is not a git ref")
    result = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if result.returncode == 0:
        return result.stdout.decode().strip()
    shallow = _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == b"true"
    raise GitError(_missing_ref(root, ref, shallow))


def read_tree(root: Path, ref: str, folder: Path) -> GitSnapshot:
    """Every schema file under `folder` (a path in the work tree) as it was at `ref`."""
    commit = _resolve(root, ref)
    relative = Path(os.path.relpath(folder.resolve(), root)).as_posix()
    if relative.startswith(".."):
        raise GitError(f"the schema folder {folder} is outside the repository at {root}")
    prefix = "" if relative == "." else relative
    args = ["ls-tree", "-r", "-z", "--full-tree", commit]
    listing = _git(root, *args, *(["--", prefix] if prefix else []))
    if listing.returncode != 0:
        raise GitError(f"git ls-tree failed: {listing.stderr.decode(errors='replace').strip()}")
    blobs: list[tuple[str, str, bool]] = []
    for entry in listing.stdout.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        path = os.fsdecode(raw_path)
        inside = path[len(prefix) + 1 :] if prefix else path
        # The same files as find_schema_files on disk: YAML, not in hidden folders.
        if kind != "blob" or not path.endswith(_SUFFIXES):
            continue
        if any(part.startswith(".") for part in inside.split("/")):
            continue
        blobs.append((path, sha, mode == "120000"))
    contents = _cat(root, blobs)
    # A link is refused as on disk (E107), never followed: git would follow it anywhere in
    # the repository, out of the schema folder. Its blob is the target's name only.
    links = [f"{ref}:{path} (to {contents[path]})" for path, _, link in blobs if link]
    if links:
        raise GitError(
            "the schema folder holds a symbolic link, which esgen does not read through "
            f"(E107): {', '.join(links)}; copy the files themselves into a folder and compare with "
            "it (--against PATH)"
        )
    return GitSnapshot(root, ref, commit, prefix, dict(sorted(contents.items())))


def _cat(root: Path, blobs: list[tuple[str, str, bool]]) -> dict[str, str]:
    """The text of each blob (by hash: a link's is the name of its target)."""
    if not blobs:
        return {}
    names = "".join(f"{sha}\n" for _, sha, _ in blobs).encode()
    result = _git(root, "cat-file", "--batch", stdin=names)
    if result.returncode != 0:
        raise GitError(f"git cat-file failed: {result.stderr.decode(errors='replace').strip()}")
    out = result.stdout
    files: dict[str, str] = {}
    at = 0
    for path, _, _ in blobs:
        header_end = out.index(b"\n", at)
        header = out[at:header_end].decode(errors="replace").split()
        if len(header) != 3:  # "<sha> missing": a partial clone that cannot fetch it
            raise GitError(f"git cannot read {path} ({' '.join(header[1:])})")
        start = header_end + 1
        content = out[start : start + int(header[2])]
        at = start + int(header[2]) + 1  # the content is followed by a newline
        try:
            files[path] = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GitError(f"{path} at this ref is not UTF-8 text ({exc.reason})") from None
    return files
