"""Sharing: `dvc push` the demo's data and model to a real SSH server and to a local folder,
`dvc pull` into a fresh clone, and get the very same bytes back; a damaged remote is reported.

The SSH remote is Debian's OpenSSH (`/usr/sbin/sshd`) on 127.0.0.1 with throwaway keys
(tests/helpers.py), reached through dvc-ssh. The project's shipped `.dvc/config` is used as is,
so its `verify = true` is what these tests check.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, SSHD, Sshd, copy_pipeline
from tests.helpers import TINY as PIPELINE

pytestmark = pytest.mark.slow

TINY = {
    "make_demo": {
        "characters": 3,
        "extras": 4,
        "episodes": 1,
        "seconds": 8,
        "fps": 2,
        "width": 480,
        "height": 270,
        "other_show_episodes": 1,
    },
    # a detector trained for seconds finds nothing: detect_faces runs a classical backend
    "train_detector": PIPELINE["train_detector"],
    "detect_faces": PIPELINE["detect_faces"],
    "split": {"test_per_class": 0.25},
    "train": {"epochs": 1},
    "annotate_samples": {"count": 1},
}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not SSHD.exists():
        pytest.skip(f"{SSHD} not found: apt-get install -y openssh-server (.ci/run does)")
    with Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def env(server: Sshd) -> dict:
    return {
        **server.env(),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }


def sh(server: Sshd, cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, cwd=cwd, env=env(server), capture_output=True, text=True, timeout=600
    )
    if ok:
        assert result.returncode == 0, (
            f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="module")
def project(sshd, tmp_path_factory) -> Path:
    """The pipeline with tiny params, reproduced and committed; the shipped .dvc/config."""
    repo = tmp_path_factory.mktemp("project")
    copy_pipeline(repo, TINY)
    sh(sshd, repo, "git", "init", "-q")
    sh(sshd, repo, "dvc", "init", "-q")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    sh(sshd, repo, "git", "add", "-A")
    sh(sshd, repo, "git", "commit", "-qm", "tiny project")
    sh(sshd, repo, "dvc", "repro")
    sh(sshd, repo, "git", "add", "-A")
    sh(sshd, repo, "git", "commit", "-qm", "reproduced")
    return repo


def cached_outputs(repo: Path) -> list[str]:
    """Every output DVC caches (and so pushes), from dvc.lock."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = [o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])]
    assert "models/model.npz" in outs and "data/faces" in outs
    return outs


def md5s(repo: Path, outs: list[str]) -> dict[str, str]:
    """md5 of every file of every output, by path."""
    sums = {}
    for out in outs:
        path = repo / out
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            sums[str(f.relative_to(repo))] = hashlib.md5(f.read_bytes()).hexdigest()
    return sums


def use_remote(server: Sshd, repo: Path, kind: str, folder: Path) -> None:
    """Point the shipped `storage` remote at `folder`, by SSH or as a local folder (--local:
    machine-specific settings stay out of git, as the README says)."""
    (repo / ".dvc" / "config.local").unlink(missing_ok=True)  # a keyfile is an error for folders
    modify = ("dvc", "remote", "modify", "--local", "storage")
    sh(server, repo, *modify, "url", server.url(folder) if kind == "ssh" else str(folder))
    if kind == "ssh":
        sh(server, repo, *modify, "keyfile", str(server.key))


@pytest.fixture(scope="module", params=["ssh", "local"])
def pushed(request, sshd, project, tmp_path_factory) -> tuple[str, Path]:
    """(kind, remote folder) after `dvc push` of the project."""
    kind = request.param
    remote = tmp_path_factory.mktemp(f"remote-{kind}")
    use_remote(sshd, project, kind, remote)
    result = sh(sshd, project, "dvc", "push")
    assert "pushed" in result.stdout
    return kind, remote


def fresh_clone(server: Sshd, project: Path, where: Path, kind: str, remote: Path) -> Path:
    clone = where / "clone"
    sh(server, where, "git", "clone", "-q", str(project), str(clone))
    use_remote(server, clone, kind, remote)
    return clone


def test_push_then_pull_in_a_fresh_clone_is_bit_identical(sshd, project, pushed, tmp_path):
    kind, remote = pushed
    outs = cached_outputs(project)
    clone = fresh_clone(sshd, project, tmp_path, kind, remote)
    assert not (clone / "models" / "model.npz").exists()
    sh(sshd, clone, "dvc", "pull")
    assert "up to date" in sh(sshd, clone, "dvc", "status").stdout
    assert "are in sync" in sh(sshd, clone, "dvc", "status", "--cloud").stdout
    original = md5s(project, outs)
    assert len(original) > len(outs)  # directory outputs hold several files each
    assert md5s(clone, outs) == original


def remote_object(remote: Path, md5: str) -> Path:
    path = remote / "files" / "md5" / md5[:2] / md5[2:]
    assert path.is_file(), f"{path}: expected object missing from the remote"
    return path


def member_md5(project: Path, out: str, member: str) -> str:
    """The md5 DVC gives `member` of directory output `out` (it hashes file contents)."""
    return hashlib.md5((project / out / member).read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_damaged_remote_object_is_reported_not_accepted(sshd, project, pushed, tmp_path, damage):
    kind, pushed_remote = pushed
    remote = tmp_path / "remote"
    shutil.copytree(pushed_remote, remote)
    if damage == "corrupt":
        # a file inside a directory output: DVC checks it out unverified unless `verify`
        target, out = "data/faces/index.csv", "data/faces"
        obj = remote_object(remote, member_md5(project, out, "index.csv"))
        obj.write_bytes(obj.read_bytes()[:-10] + b"tampered!!")
    else:
        target, out = "models/model.npz", "models/model.npz"
        remote_object(remote, hashlib.md5((project / target).read_bytes()).hexdigest()).unlink()
    clone = fresh_clone(sshd, project, tmp_path, kind, remote)
    result = sh(sshd, clone, "dvc", "pull", ok=False)
    report = result.stdout + result.stderr
    assert result.returncode != 0, f"dvc pull accepted a {damage} object:\n{report}"
    assert out in report, report
    # nothing damaged reached the workspace: what is there is the original, byte for byte
    original = md5s(project, cached_outputs(project))
    present = md5s(clone, [path for path in original if (clone / path).is_file()])
    assert target not in present
    assert all(original[path] == value for path, value in present.items())
    status = sh(sshd, clone, "dvc", "status").stdout
    assert out in status and "up to date" not in status
