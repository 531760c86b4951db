"""environment.yml (Binder) and requirements.txt must pin the same packages."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#;]+)")


def pins(text):
    found = {}
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_environment_yml_matches_requirements():
    required = pins((ROOT / "requirements.txt").read_text())
    binder = pins((ROOT / "environment.yml").read_text())
    assert required, "no pins found in requirements.txt"
    assert binder == required


def test_every_requirement_is_pinned_exactly():
    for name in ("requirements.txt", "requirements-test.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                assert PIN.match(line), f"{name}: {line!r} is not pinned with =="


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert pins((ROOT / "requirements.txt").read_text())["torch"] == "2.13.0"


def test_pins_agree_with_what_is_installed():
    from importlib.metadata import version

    for name, pinned in pins((ROOT / "requirements.txt").read_text()).items():
        assert version(name).split("+")[0] == pinned, name
