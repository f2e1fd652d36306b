"""The lock files (requirements/*.lock, which `make` installs) agree with pyproject.toml: a pin
changed there without `make lock` fails here, not on someone else's machine."""

from __future__ import annotations

import re
import tomllib

from portal.config import ROOT

LOCKS = ROOT / "requirements"


def name_of(requirement: str) -> str:
    """The normalised project name (PEP 503) of `name[extra]==1.0 ; marker`."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def pins(requirements: list[str]) -> dict[str, str]:
    found = {}
    for line in requirements:
        line = line.split("#")[0].split(";")[0].strip()
        if "==" in line:
            found[name_of(line)] = line.split("==")[1].strip()
    return found


def lock(name: str) -> dict[str, str]:
    return pins((LOCKS / f"{name}.lock").read_text().splitlines())


def test_each_lock_pins_its_install_at_pyprojects_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = pins(project["dependencies"])
    embedded = runtime | pins(project["optional-dependencies"]["embedded"])
    dev = embedded | pins(project["optional-dependencies"]["dev"])
    for name, wanted in (("runtime", runtime), ("embedded", embedded), ("dev", dev)):
        locked = lock(name)
        assert {n: locked.get(n) for n in wanted} == wanted, f"requirements/{name}.lock: run `make lock`"
    assert "pgserver" not in lock("runtime") and "pytest" not in lock("embedded")


def test_the_smaller_locks_agree_with_the_dev_lock():
    """One version of each package whichever install took it (`make install` on top of
    `make install-runtime` changes nothing already installed)."""
    dev = lock("dev")
    for name in ("runtime", "embedded"):
        assert {n: dev.get(n) for n in lock(name)} == lock(name), name
