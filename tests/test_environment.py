"""environment.yml (Binder) and requirements.txt must pin the same packages.

requirements.txt may give a package different pins for different Pythons with environment
markers (`; python_version < "3.11"`); Binder runs Python 3.11 on Linux, so environment.yml
must equal what requirements.txt gives there, and this environment must hold what it gives
for the Python running the tests.
"""

import platform
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#;]+)")
BINDER = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.0",
          "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64"}


def pins(text, environment=None):
    """{name: version} of the `name==version` lines whose marker holds in `environment`."""
    found = {}
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        if PIN.match(line):
            requirement = Requirement(line.lstrip("- "))
            if requirement.marker is None or requirement.marker.evaluate(environment):
                name = requirement.name.lower()
                assert name not in found, f"{name} is pinned twice for {environment or 'this Python'}"
                found[name] = str(requirement.specifier)[2:]
    return found


def test_environment_yml_matches_requirements_for_python_3_11():
    assert re.search(r"^\s*-\s*python=3\.11\s*$", (ROOT / "environment.yml").read_text(), re.MULTILINE)
    required = pins((ROOT / "requirements.txt").read_text(), BINDER)
    binder = pins((ROOT / "environment.yml").read_text(), BINDER)
    assert required, "no pins found in requirements.txt"
    assert binder == required


def test_every_requirement_is_pinned_exactly():
    for name in ("requirements.txt", "requirements-test.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                assert PIN.match(line), f"{name}: {line!r} is not pinned with =="


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert pins((ROOT / "requirements.txt").read_text(), BINDER)["torch"] == "2.13.0"


def test_pins_agree_with_what_is_installed():
    here = f"Python {platform.python_version()} on {sys.platform}"
    for name in ("requirements.txt", "requirements-test.txt"):
        for package, pinned in pins((ROOT / name).read_text()).items():
            try:
                installed = version(package)
            except PackageNotFoundError:
                installed = "not installed"
            assert installed.split("+")[0] == pinned, f"{package}: {name} pins {pinned} for {here}, found {installed}"
