"""A tiny loopback server speaking the part of the Hub API that huggingface_hub 2.4.0's
``create_repo`` + ``create_branch`` + ``upload_folder`` call (olah, the download server of these
tests, refuses uploads with 405):

- ``POST /api/validate-yaml``                                   -> parses the README.md
  front matter (PyYAML), 400 when it is not a mapping
- ``POST /api/repos/create``                                   -> ``{"url": ...}``
- ``POST /api/{type}s/{org}/{name}/branch/{branch}``            -> create a git branch
- ``POST /api/{type}s/{org}/{name}/preupload/{revision}``       -> every file ``"regular"``
  (no LFS / Xet: the content travels base64 in the commit)
- ``POST /api/{type}s/{org}/{name}/commit/{revision}``          -> NDJSON ``header`` + ``file``
  lines, committed to a plain git repo ``{mirrors}/{type}s/{org}/{name}`` (the layout olah
  serves in offline mode, so what was pushed can be downloaded back through olah)

Anything else answers 404 and is recorded in ``FakeHub.unhandled`` (tests assert it is empty).
Standard library + the ``git`` command only; 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

_GIT_ENV = {"GIT_AUTHOR_NAME": "fake-hub", "GIT_AUTHOR_EMAIL": "fake@hub.invalid",
            "GIT_COMMITTER_NAME": "fake-hub", "GIT_COMMITTER_EMAIL": "fake@hub.invalid",
            "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/nonexistent"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=_GIT_ENV, timeout=60).stdout.strip()


def init_repo(repo: Path) -> None:
    if (repo / ".git").is_dir():
        return
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial commit")


def commit_files(repo: Path, files: dict[str, bytes], message: str,
                 branch: str = "main") -> str:
    """Write ``files`` into ``repo`` on ``branch`` and commit; returns the commit sha."""
    init_repo(repo)
    git(repo, "checkout", "-q", branch)
    for path, data in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


class FakeHub:
    def __init__(self, mirrors: Path) -> None:
        self.mirrors = Path(mirrors)
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.commits: list[dict] = []
        self.validated: list = []  # parsed README.md metadata of every validate-yaml call
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _answer(self, code: int, obj) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self):
                self._body()
                hub.requests.append(("GET", self.path))
                hub.unhandled.append(("GET", self.path))
                self._answer(404, {"error": "not implemented by the fake hub"})

            do_PUT = do_DELETE = do_HEAD = do_GET

            def do_POST(self):
                data = self._body()
                path = unquote(urlparse(self.path).path)
                hub.requests.append(("POST", path))
                with hub._lock:
                    try:
                        code, obj = hub.handle_post(path, data, self.headers)
                    except Exception as exc:  # report, do not kill the thread
                        code, obj = 500, {"error": f"{type(exc).__name__}: {exc}"}
                if code == 404:
                    hub.unhandled.append(("POST", path))
                self._answer(code, obj)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        return self.mirrors / f"{repo_type}s" / repo_id

    # ------------------------------------------------------------------ endpoints
    def handle_post(self, path: str, data: bytes, headers) -> tuple[int, object]:
        parts = path.strip("/").split("/")
        if parts == ["api", "validate-yaml"]:  # README.md metadata check before a commit
            import yaml

            text = json.loads(data)["content"]
            meta = None
            if text.startswith("---\n") and "\n---" in text[4:]:
                try:
                    meta = yaml.safe_load(text[4:text.index("\n---", 4)])
                except yaml.YAMLError as exc:
                    return 400, {"errors": [{"message": f"invalid YAML: {exc}"}]}
            self.validated.append(meta)
            if meta is not None and not isinstance(meta, dict):
                return 400, {"errors": [{"message": "metadata must be a mapping"}]}
            return 200, {"errors": [], "warnings": []}
        if parts[:3] == ["api", "repos", "create"]:
            req = json.loads(data or b"{}")
            rtype = req.get("type") or "model"
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") \
                else req["name"]
            init_repo(self.repo_dir(rtype, repo_id))
            prefix = "" if rtype == "model" else f"{rtype}s/"
            return 200, {"url": f"{self.url}/{prefix}{repo_id}", "name": repo_id}
        if len(parts) >= 6 and parts[0] == "api" and parts[1] in ("models", "datasets"):
            rtype = parts[1][:-1]
            repo_id = "/".join(parts[2:4])
            action, rev = parts[4], "/".join(parts[5:])
            repo = self.repo_dir(rtype, repo_id)
            if not (repo / ".git").is_dir():
                return 404, {"error": f"Repository {repo_id} not found"}
            if action == "branch":
                if rev not in git(repo, "branch", "--format=%(refname:short)").split():
                    git(repo, "branch", rev, "main")
                return 200, {}
            if action == "preupload":
                req = json.loads(data)
                return 200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                        "shouldIgnore": False, "oid": None}
                                       for f in req["files"]]}
            if action == "commit":
                files: dict[str, bytes] = {}
                message = "commit"
                for line in data.splitlines():
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if item["key"] == "header":
                        message = item["value"].get("summary") or message
                    elif item["key"] == "file":
                        v = item["value"]
                        if v.get("encoding", "base64") != "base64":
                            return 400, {"error": "only base64 files"}
                        files[v["path"]] = base64.b64decode(v["content"])
                    else:
                        return 400, {"error": f"unsupported operation {item['key']}"}
                sha = commit_files(repo, files, message, branch=rev)
                self.commits.append({"repo": repo_id, "type": rtype, "revision": rev,
                                     "files": sorted(files), "sha": sha})
                prefix = "" if rtype == "model" else f"{rtype}s/"
                return 200, {"commitUrl": f"{self.url}/{prefix}{repo_id}/commit/{sha}",
                             "commitOid": sha, "pullRequestUrl": None}
        return 404, {"error": f"not implemented by the fake hub: {path}"}
