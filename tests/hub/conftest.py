"""Fixtures of the Hub tests: a real Hub-compatible download server (olah, in its own virtual
environment ``<repo>/.venv-olah``, created on first use) and the upload fake (``fake_hub.py``).
Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OLAH_VERSION = "0.5.4"  # measured in /work/shared/notes/platform.md
OLAH_VENV = REPO / ".venv-olah"
OLAH_CLI = OLAH_VENV / "bin" / "olah-cli"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_olah_venv() -> tuple[Path, float]:
    """``<repo>/.venv-olah`` with olah installed (created if missing; a file lock keeps
    parallel pytest workers from building it twice). Returns (olah-cli path, seconds spent
    creating it, 0 when it existed). Fails the test - never skips - when it cannot be made."""
    lock_path = REPO / ".venv-olah.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if OLAH_CLI.is_file():
            return OLAH_CLI, 0.0
        t0 = time.perf_counter()
        steps = [[sys.executable, "-m", "venv", str(OLAH_VENV)],
                 [str(OLAH_VENV / "bin" / "python"), "-m", "pip", "install", "-q",
                  "--disable-pip-version-check", f"olah=={OLAH_VERSION}"]]
        for cmd in steps:
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as exc:
                pytest.fail(f"cannot create the olah virtual environment {OLAH_VENV} "
                            f"({' '.join(cmd[:4])}...): {exc}; the Hub download tests need "
                            f"olah=={OLAH_VERSION} from PyPI", pytrace=False)
            if r.returncode != 0:
                tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
                pytest.fail(f"cannot create the olah virtual environment {OLAH_VENV}: "
                            f"`{' '.join(cmd)}` exited {r.returncode}: {' | '.join(tail)} "
                            f"(needs PyPI access for olah=={OLAH_VERSION})", pytrace=False)
        if not OLAH_CLI.is_file():
            pytest.fail(f"{OLAH_CLI} missing after installing olah=={OLAH_VERSION}",
                        pytrace=False)
        return OLAH_CLI, time.perf_counter() - t0


class Olah:
    """olah in offline mode serving plain git repos under ``mirrors``."""

    def __init__(self, cli: Path, root: Path) -> None:
        self.mirrors = root / "mirrors"
        self.mirrors.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = root / "olah.toml"
        cfg.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{root / "repos"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\n'
            f'mirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            "[accessibility]\noffline = true\n")
        self.log = open(root / "olah.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON"))}
        self.proc = subprocess.Popen([str(cli), "-c", str(cfg)], cwd=root, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                self.log.flush()
                tail = (root / "olah.log").read_text(errors="replace")[-800:]
                pytest.fail(f"olah exited with {self.proc.returncode}: {tail}", pytrace=False)
            try:
                urllib.request.urlopen(f"{self.url}/api/models/none/none", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    pytest.fail("olah did not answer within 60 s", pytrace=False)
                time.sleep(0.2)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="session")
def olah_cli():
    cli, seconds = ensure_olah_venv()
    if seconds:
        print(f"\ncreated {OLAH_VENV} (olah=={OLAH_VERSION}) in {seconds:.1f} s")
    return cli


@pytest.fixture(scope="session")
def olah(olah_cli, tmp_path_factory):
    server = Olah(olah_cli, tmp_path_factory.mktemp("olah"))
    yield server
    server.close()


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    """Online Hub settings for this test only: a fresh HF_HOME; the caller sets the endpoint
    with ``hub_env(url)``."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")

    def use(endpoint: str) -> Path:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        return tmp_path / "hf_home"

    return use
