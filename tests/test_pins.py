"""Every pin resolves to binary wheels on every Python and platform a student may have.

For each supported (Python, platform) pair, pip's own resolver does a dry run of
requirements.txt + requirements-test.txt with `--only-binary=:all:`, as
`pip install --dry-run --python-version X --platform TAG` would: no compiler, no sdist.

Two details make that dry run check the right thing, and fast:
- pip evaluates environment markers (`; python_version < "3.11"`) against the Python
  that runs it, not against `--python-version`. So each requirement line's marker is
  evaluated here for the target with `packaging.markers`, and pip is started with its
  marker environment set to the target too, so the dependencies' markers (torch's CUDA
  libraries are `platform_system == "Linux"`) follow the target as well.
- pip needs each wheel's metadata, not the wheel. A small local index in front of the
  package index serves the listings and each wheel's METADATA (from the index's
  `.metadata` file when it has one, otherwise read out of the wheel's zip directory
  with HTTP range requests) once for all fifteen runs, which go in parallel.

The package index is PIP_INDEX_URL if set, else PyPI. If it cannot be reached the tests
skip with the reason, or fail when CI=true.

Print the (Python, platform) -> resolved table by hand with: python tests/test_pins.py
"""

import email
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT_FILES = ("requirements.txt", "requirements-test.txt")
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
INDEX_URL = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
RUN_TIMEOUT_S = 240  # one pip dry run; all fifteen run at once

# Oldest systems covered: glibc 2.28 (manylinux_2_28: Ubuntu 20.04, Debian 10, RHEL 8),
# macOS 14 on Apple silicon, 64-bit Windows 10/11.
MANYLINUX = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)]
PLATFORMS = {
    "Linux x86_64": {
        "family": ("linux_x86_64", "manylinux"),
        "tags": MANYLINUX + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
        "markers": {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
                    "platform_machine": "x86_64"},
    },
    "macOS arm64": {
        "family": ("arm64", "universal2"),
        "tags": ["macosx_14_0_arm64"],  # pip adds the older macOS versions and universal2
        "markers": {"os_name": "posix", "sys_platform": "darwin", "platform_system": "Darwin",
                    "platform_machine": "arm64"},
    },
    "Windows x86_64": {
        "family": ("win_amd64",),
        "tags": ["win_amd64"],
        "markers": {"os_name": "nt", "sys_platform": "win32", "platform_system": "Windows",
                    "platform_machine": "AMD64"},
    },
}
PLATFORM_PATHS = {name.replace(" ", "-"): name for name in PLATFORMS}
TARGETS = [(python, platform) for python in PYTHONS for platform in PLATFORMS]


def marker_environment(python, platform):
    """The values a marker sees on CPython `python` (e.g. "3.10") on `platform`."""
    return {
        **PLATFORMS[platform]["markers"],
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "python_version": python,
    }


def pins_for(environment, files=REQUIREMENT_FILES):
    """The requirement lines whose marker holds in `environment`, as [Requirement].

    >>> [str(r) for r in pins_for(marker_environment("3.10", "Linux x86_64"))][:1]
    ['torch==2.13.0']
    """
    pins = []
    for name in files:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split(" #")[0].strip()
            if not line or line.startswith("#"):
                continue
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                requirement.marker = None
                pins.append(requirement)
    return pins


# --- a local index in front of the package index: listings and wheel metadata, fetched once ---

_connections = threading.local()  # one keep-alive connection per thread and host


def _fetch(url, headers=None, timeout=30):
    """GET `url`: (headers, body). Raises urllib.error.HTTPError on an HTTP error."""
    parts = urllib.parse.urlsplit(url)
    pool = _connections.__dict__.setdefault("pool", {})
    for attempt in range(2):  # a kept-alive connection may have been closed by the server
        connection = pool.get(parts.netloc)
        if connection is None:
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = pool[parts.netloc] = kind(parts.netloc, timeout=timeout)
        try:
            connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
            response = connection.getresponse()
            body = response.read()
            break
        except (http.client.HTTPException, OSError):
            connection.close()
            del pool[parts.netloc]
            if attempt:
                raise
    if response.status in (301, 302, 303, 307, 308):
        return _fetch(urllib.parse.urljoin(url, response.headers["Location"]), headers, timeout)
    if response.status >= 400:
        raise urllib.error.HTTPError(url, response.status, response.reason, response.headers, None)
    return response.headers, body


class _RangeFile(io.RawIOBase):
    """A remote file read with HTTP range requests, enough for zipfile to find one member."""

    BLOCK = 64 * 1024

    def __init__(self, url):
        super().__init__()
        self.url, self.position, self.spans = url, 0, []
        headers, tail = _fetch(url, {"Range": f"bytes=-{self.BLOCK}"})
        self.size = int(headers["Content-Range"].rsplit("/", 1)[1]) if headers.get("Content-Range") else len(tail)
        self.spans.append((self.size - len(tail), tail))

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=io.SEEK_SET):
        self.position = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence] + offset
        return self.position

    def readinto(self, buffer):
        want = min(len(buffer), self.size - self.position)
        if want <= 0:
            return 0
        for start, data in self.spans:
            if start <= self.position and self.position + want <= start + len(data):
                break
        else:
            end = min(self.size, self.position + max(want, self.BLOCK)) - 1
            _, data = _fetch(self.url, {"Range": f"bytes={self.position}-{end}"})
            start = self.position
            self.spans.append((start, data))
        offset = self.position - start
        buffer[:want] = data[offset:offset + want]
        self.position += want
        return want


def _wheel_metadata(url):
    """The METADATA file of the wheel at `url`, without downloading the wheel."""
    with zipfile.ZipFile(_RangeFile(url)) as wheel:
        names = [n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        return wheel.read(names[0])


class _LocalIndex(ThreadingHTTPServer):
    """Serves /<platform>/simple/<project>/ (that platform's wheels, each announcing its metadata)
    and /files/<number>/<wheel>.metadata."""

    daemon_threads = True

    def __init__(self, upstream):
        super().__init__(("127.0.0.1", 0), _IndexHandler)
        self.upstream, self.files, self.lock, self.memo = upstream, {}, threading.Lock(), {}
        self.prefetch = ThreadPoolExecutor(8)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def once(self, key, compute):
        """compute() once per key, whichever of the parallel pip runs asks first."""
        with self.lock:
            future, owner = self.memo.get(key), False
            if future is None:
                future, owner = self.memo.setdefault(key, Future()), True
        if owner:
            try:
                future.set_result(compute())
            except Exception as error:  # handed to every run that asks for this key
                future.set_exception(error)
        return future.result()

    def listing(self, project):
        """The project's wheels on the package index, each pointing to this index for its metadata."""
        _, body = _fetch(f"{self.upstream}/{project}/", {"Accept": "application/vnd.pypi.simple.v1+json"})
        page = json.loads(body)
        files = []
        for entry in page["files"]:
            if not entry["filename"].endswith(".whl"):
                continue  # --only-binary: pip would pass over sdists anyway
            url = urllib.parse.urljoin(f"{self.upstream}/{project}/", entry["url"])
            with self.lock:
                number = len(self.files)
                self.files[number] = (url, bool(entry.get("core-metadata") or entry.get("dist-info-metadata")))
            files.append({**entry, "url": f"{self.url}/files/{number}/{entry['filename']}",
                          "core-metadata": True, "dist-info-metadata": True})
        return {**page, "files": files}

    def platform_listing(self, platform, project):
        """The listing less the wheels built for other platforms, which pip would pass over:
        parsing the ~80,000 links of all platforms is most of pip's time otherwise."""
        project = canonicalize_name(project)
        page = self.once(("listing", project), lambda: self.listing(project))
        family = PLATFORMS[platform]["family"]

        def wanted(filename):
            tags = filename[:-len(".whl")].split("-")[-1]
            return tags == "any" or any(word in tags for word in family)

        return json.dumps({**page, "files": [f for f in page["files"] if wanted(f["filename"])]}).encode()

    def metadata(self, number):
        """The wheel's METADATA. The listings of its dependencies are fetched at once, in the
        background, so that pip finds them ready instead of waiting for one fetch after another."""
        url, index_has_it = self.files[number]
        metadata = _fetch(url + ".metadata")[1] if index_has_it else _wheel_metadata(url)
        for line in email.message_from_bytes(metadata).get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            if requirement.marker and "extra" in str(requirement.marker):
                continue  # an optional dependency, which none of the pins asks for
            project = canonicalize_name(requirement.name)
            self.prefetch.submit(self.once, ("listing", project), lambda p=project: self.listing(p))
        return metadata


class _IndexHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per pip run

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        index, parts = self.server, self.path.strip("/").split("/")
        try:
            if len(parts) == 3 and parts[1] == "simple" and parts[0] in PLATFORM_PATHS:
                body = index.platform_listing(PLATFORM_PATHS[parts[0]], parts[2])
                kind = "application/vnd.pypi.simple.v1+json"
            elif len(parts) == 3 and parts[0] == "files" and parts[2].endswith(".metadata"):
                body = index.once(("metadata", int(parts[1])), lambda: index.metadata(int(parts[1])))
                kind = "application/octet-stream"
            else:
                return self.send_error(404)
        except urllib.error.HTTPError as error:
            return self.send_error(error.code)
        except Exception as error:
            return self.send_error(502, repr(error)[:200])
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# --- the dry runs ---

# Started as `python -c BOOT ENV_JSON pip-arguments...`: pip with its marker environment
# set to the target's, so that dependencies' markers are evaluated for the target.
BOOT = """
import json, sys
import pip._vendor.packaging.markers as markers
if not hasattr(markers, "default_environment"):
    sys.exit("tests/test_pins.py: this pip has no packaging.markers.default_environment to set")
target = json.loads(sys.argv[1])
markers.default_environment = lambda: dict(target)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def dry_run(python, platform, index_url):
    """pip's dry run for one target: (returncode, {name: version}, pip's error output)."""
    environment = marker_environment(python, platform)
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        command = [sys.executable, "-c", BOOT, json.dumps(environment),
                   "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
                   "--python-version", python, "--implementation", "cp",
                   *[f"--platform={tag}" for tag in PLATFORMS[platform]["tags"]],
                   "--index-url", f"{index_url}/{platform.replace(' ', '-')}/simple", "--no-cache-dir", "--quiet",
                   "--report", str(report), *[str(pin) for pin in pins_for(environment)]]
        # No pip configuration or PIP_* variables: only this index, no local wheels or constraints.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, {}, f"pip's dry run took more than {RUN_TIMEOUT_S} s"
        resolved = {}
        if done.returncode == 0:
            for item in json.loads(report.read_text())["install"]:
                resolved[item["metadata"]["name"].lower()] = item["metadata"]["version"]
        return done.returncode, resolved, done.stderr.strip()


def index_problem():
    """None if the package index answers, else why not."""
    try:
        _fetch(f"{INDEX_URL}/pip/", {"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=10)
    except (OSError, ValueError, http.client.HTTPException) as error:
        return f"the package index {INDEX_URL} cannot be reached ({error})"
    return None


def resolve_all():
    """{(python, platform): (returncode, resolved, errors)} for every target, in parallel."""
    index = _LocalIndex(INDEX_URL)
    threading.Thread(target=index.serve_forever, daemon=True).start()
    try:
        with ThreadPoolExecutor(len(TARGETS)) as pool:
            runs = {target: pool.submit(dry_run, *target, index.url) for target in TARGETS}
            return {target: run.result() for target, run in runs.items()}
    finally:
        index.shutdown()
        index.server_close()
        index.prefetch.shutdown(wait=False, cancel_futures=True)


@pytest.fixture(scope="module")
def resolutions():
    problem = index_problem()
    if problem:
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true, so the pins must be resolved: {problem}", pytrace=False)
        pytest.skip(f"{problem}; the pins were not resolved")
    return resolve_all()


def test_each_package_is_pinned_once_for_every_target():
    names = {req.name.lower() for req in pins_for(marker_environment("3.11", "Linux x86_64"))}
    for python, platform in TARGETS:
        pins = [req.name.lower() for req in pins_for(marker_environment(python, platform))]
        assert sorted(pins) == sorted(names), f"{python} {platform}: markers leave out or repeat a package"
        assert all(str(req.specifier).startswith("==") for req in pins_for(marker_environment(python, platform)))


@pytest.mark.parametrize("python,platform", TARGETS, ids=[f"{py}-{pl.split()[0]}" for py, pl in TARGETS])
def test_pins_resolve_to_wheels(resolutions, python, platform):
    returncode, resolved, errors = resolutions[(python, platform)]
    if returncode != 0:
        pytest.fail(f"CPython {python} on {platform}: the pins do not resolve to wheels:\n{errors}", pytrace=False)
    for pin in pins_for(marker_environment(python, platform)):
        assert pin.specifier.contains(resolved[pin.name.lower()]), pin


if __name__ == "__main__":
    problem = index_problem()
    if problem:
        sys.exit(problem)
    results = resolve_all()
    pinned = sorted({r.name.lower() for t in TARGETS for r in pins_for(marker_environment(*t))})
    for python, platform in TARGETS:
        returncode, resolved, errors = results[(python, platform)]
        shown = ", ".join(f"{n} {resolved[n]}" for n in pinned if n in resolved)
        print(f"CPython {python} {platform:15} {'resolved' if returncode == 0 else 'FAILED'}"
              f" ({len(resolved)} packages): {shown if returncode == 0 else errors.splitlines()[-1:]}")
