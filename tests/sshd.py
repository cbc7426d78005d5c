"""A throwaway OpenSSH server on 127.0.0.1 for DVC remote tests and the storage bench.

Everything lives in one temporary folder: host and user keys, sshd_config, the pid file, and a
HOME whose ~/.ssh/known_hosts trusts the host key (dvc-ssh has no known-hosts option; asyncssh
reads ~/.ssh/known_hosts of the client process).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """`with Sshd(folder) as server:` serves sftp and shell logins by key, as the current user."""

    def __init__(self, folder: Path, log_sftp: bool = False) -> None:
        self.folder = Path(folder)
        self.log_sftp = log_sftp
        self.home = self.folder / "home"
        self.key = self.folder / "user_key"
        self.user = getpass.getuser()
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Sshd:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _keygen(self, path: Path) -> str:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "charaid-test", "-f", str(path)],
            check=True,
            capture_output=True,
        )
        return (path.with_suffix(".pub")).read_text().strip()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        host_key = self.folder / "host_key"
        host_pub = self._keygen(host_key)
        user_pub = self._keygen(self.key)
        (self.folder / "authorized_keys").write_text(user_pub + "\n")
        self.port = free_port()
        subsystem = "internal-sftp"
        if self.log_sftp:
            # internal-sftp logs only to syslog; the standalone server logs requests to stderr.
            wrapper = self.folder / "sftp-logged"
            wrapper.write_text(
                f"#!/bin/sh\nexec {SFTP_SERVER} -e -l VERBOSE 2>>{self.folder / 'sftp.log'}\n"
            )
            wrapper.chmod(0o755)
            subsystem = str(wrapper)
        config = self.folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {host_key}\n"
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}\n"
            f"PidFile {self.folder / 'sshd.pid'}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "UsePAM no\n"
            # dvc-ssh talks sftp; without this line sshd refuses the subsystem.
            f"Subsystem sftp {subsystem}\n"
            "MaxSessions 64\n"
            "MaxStartups 64\n"
            "LogLevel ERROR\n"
        )
        # sshd refuses to start without its privilege-separation folder.
        with contextlib.suppress(PermissionError):
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True)
        (ssh_dir / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        self.log = open(self.folder / "sshd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.folder / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("sshd did not start listening within 15 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.log.close()
        self.process = None

    def sftp_requests(self) -> dict[str, int]:
        """Counts, by kind, of the sftp requests served so far (with log_sftp): open, close,
        stat, lstat, mkdir, rename, opendir, ...; sftp-server does not log data reads/writes."""
        counts: dict[str, int] = {}
        log = self.folder / "sftp.log"
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            # e.g. 'open "/x" flags WRITE,CREATE,TRUNCATE mode 0666', 'mkdir name "/y" mode 0777'
            word = line.split(" ", 1)[0]
            if word not in ("session", "received", "sent"):
                counts[word] = counts.get(word, 0) + 1
        return counts

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{Path(path).resolve()}"

    def env(self) -> dict:
        """Environment for clients (dvc, ssh, rsync): HOME with known_hosts, no agent."""
        env = {**os.environ, "HOME": str(self.home)}
        env.pop("SSH_AUTH_SOCK", None)
        return env

    def ssh_command(self) -> list[str]:
        """An `ssh` command line (for rsync -e) that uses the throwaway key and known_hosts."""
        return [
            shutil.which("ssh") or "ssh",
            "-p",
            str(self.port),
            "-i",
            str(self.key),
            "-o",
            f"UserKnownHostsFile={self.home / '.ssh' / 'known_hosts'}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ]
