"""The two trees a benchmark compares in one run: "before" — tongban's source at the
commit before issue 11's kernel work — and "after", the working tree.

The before tree is unpacked once (`git archive <commit> src`) into
var/bench/before-<commit>/src and reused by later runs. Its servers and workers run as
separate processes of this venv's Python with PYTHONPATH=<tree>/src, so `import tongban`
finds that tree's package first (the editable install only appends the working tree's
src to sys.path). Which commit: BEFORE_REF, or TONGBAN_BENCH_BEFORE=<commit>
(TONGBAN_BENCH_BEFORE=none measures "after" only). "After" is the working tree, or
the commit in TONGBAN_BENCH_AFTER.

When git, the commit (a shallow clone) or a package the old tree needs is missing, the
benchmarks print "before: unavailable (…)" and measure "after" only; they never fail for
that. `python benchmarks/_before.py` prepares the tree and prints which one it is.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "var" / "bench"

#: The last commit before issue 11's kernel work (the kernel began right after it).
BEFORE_REF = "301fd29"
ENV_VAR = "TONGBAN_BENCH_BEFORE"
AFTER_VAR = "TONGBAN_BENCH_AFTER"
#: What a tree must import for the benchmarks to drive it.
IMPORT_CHECK = (
    "import tongban, tongban.cli, tongban.demo, tongban.exchange.local, "
    "tongban.exchange.service; print(tongban.__file__)"
)

T = TypeVar("T")


class Unavailable(Exception):
    """The before tree cannot be had; the message says why (printed, never raised on)."""


@dataclass(frozen=True)
class Tree:
    """One version of tongban's source, run in processes of its own."""

    label: str  # "before" or "after"
    src: Path
    commit: str  # a commit, or "working tree at <commit>"

    @property
    def title(self) -> str:
        return f"before ({self.commit[:7]})" if self.label == "before" else self.label

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) with PYTHONPATH pointing at this tree's src only."""
        env = dict(os.environ if base is None else base)
        env["PYTHONPATH"] = str(self.src)
        return env


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise Unavailable("git is not installed") from exc


def _materialise(commit: str, label: str = "before") -> Path:
    """var/bench/<label>-<commit>/src, unpacked from git once; returns the src path."""
    dest = BENCH / f"{label}-{commit[:12]}"
    done = dest / ".complete"
    if done.exists():
        return dest / "src"
    archive = _git("archive", "--format=tar", commit, "src")
    if archive.returncode != 0:
        raise Unavailable(f"git archive {commit[:12]} src failed: {archive.stderr.decode()[:200]}")
    tmp = BENCH / f".{label}-{commit[:12]}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp, filter="data")
    (tmp / ".complete").write_text(commit + "\n")
    shutil.rmtree(dest, ignore_errors=True)  # a half-made copy of an interrupted run
    try:
        tmp.rename(dest)
    except OSError:  # another run made it first
        shutil.rmtree(tmp, ignore_errors=True)
        if not done.exists():
            raise
    return dest / "src"


def _check_imports(tree: Tree) -> None:
    r = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK],
        env=tree.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        if last.startswith("ModuleNotFoundError") and "tongban" not in last:
            raise Unavailable(f"its code needs a package this venv lacks: {last}")
        raise Unavailable(f"its code does not import here: {last}")
    loaded = Path(r.stdout.strip().splitlines()[-1]).resolve()
    if not loaded.is_relative_to(tree.src.resolve()):
        raise Unavailable(f"PYTHONPATH did not take: tongban came from {loaded}")


def before_tree(*, quiet: bool = False) -> Tree | None:
    """The before tree, ready to run; or None after printing "before: unavailable (…)"."""
    ref = os.environ.get(ENV_VAR, "").strip() or BEFORE_REF
    try:
        if ref.lower() in ("none", "off", "0"):
            raise Unavailable(f"{ENV_VAR}={ref}")
        rev = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if rev.returncode != 0:
            shallow = _git("rev-parse", "--is-shallow-repository").stdout.decode().strip()
            why = (
                "a shallow clone" if shallow == "true" else "not a git checkout, or no such commit"
            )
            raise Unavailable(f"commit {ref} is not in this repository: {why}")
        commit = rev.stdout.decode().strip()
        tree = Tree("before", _materialise(commit), commit)
        _check_imports(tree)
    except Unavailable as exc:
        print(f"before: unavailable ({exc}); measuring after only", flush=True)
        return None
    if not quiet:
        print(f"before: {commit[:12]} ({ref}) at {tree.src}", flush=True)
    return tree


def after_tree() -> Tree:
    """The working tree (whatever is checked out and edited now), or the commit named by
    TONGBAN_BENCH_AFTER (unpacked like the before tree), e.g. HEAD when the working tree
    is in the middle of a change."""
    ref = os.environ.get(AFTER_VAR, "").strip()
    if ref:
        try:
            rev = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
            if rev.returncode != 0:
                raise Unavailable(f"no commit {ref}")
            commit = rev.stdout.decode().strip()
            tree = Tree("after", _materialise(commit, "after"), commit)
            _check_imports(tree)
        except Unavailable as exc:
            raise SystemExit(f"after: {AFTER_VAR}={ref} unusable ({exc})") from exc
        print(f"after: {commit[:12]} ({ref}) at {tree.src}", flush=True)
        return tree
    head = _git("rev-parse", "--short=12", "HEAD") if shutil.which("git") else None
    at = head.stdout.decode().strip() if head is not None and head.returncode == 0 else "?"
    return Tree("after", ROOT / "src", f"working tree at {at}")


def trees() -> list[Tree]:
    """[before, after], or [after] when the before tree is unavailable."""
    before = before_tree()
    return [before, after_tree()] if before is not None else [after_tree()]


def round_order(items: Sequence[T], round_no: int) -> list[T]:
    """Round 0 in the given order, round 1 reversed, and so on: before and after take
    turns at going first, so a change in the machine's load falls on both alike."""
    return list(items) if round_no % 2 == 0 else list(reversed(items))


def split(total: int, rounds: int) -> list[int]:
    """`total` in `rounds` nearly equal parts (none empty)."""
    rounds = max(1, min(rounds, total))
    return [total // rounds + (1 if i < total % rounds else 0) for i in range(rounds)]


def comparison(
    figure: str,
    unit: str,
    before: float | None,
    after: float,
    *,
    tree: Tree | None,
    note: str = "",
) -> dict[str, object]:
    """One line of "this run: before vs after", as summary.py prints it."""
    return {
        "figure": figure,
        "unit": unit,
        "before": before,
        "after": after,
        "ratio_after_to_before": round(after / before, 3) if before else None,
        "before_commit": tree.commit if tree is not None else None,
        "note": note,
    }


if __name__ == "__main__":
    before_tree()  # prints which tree, or why there is none; never fails the run
