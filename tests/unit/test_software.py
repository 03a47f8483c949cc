"""Software versions asked for in task.json against the versions nodes offer (domain/software.py), and the
forms querySoftwareDetail lists a node's version in (server/hardware.py)."""

import pytest

from rayfarm.domain.software import matches
from rayfarm.server.hardware import version_forms


@pytest.mark.parametrize("asked, offered, expected", [
    ("3.4", "3.4.1", True),
    ("3.4", "3.4", True),
    ("3.4.1", "3.4.1", True),
    ("3.4.1", "3.4", False),
    ("3.4.1", "3.4.10", False),
    ("3.4", "3.40.1", False),
    ("3", "3.4.1", True),
    ("4.2", "3.4.1", False),
    (" 3.4 ", "3.4.1", True),  # trimmed
    ("3.4-LTS", "3.4-lts", True),  # case-insensitive
    ("", "3.4.1", True),  # no version asked for
])
def test_matches(asked, offered, expected):
    assert matches(asked, offered) is expected


@pytest.mark.parametrize("version, forms", [
    ("3.4.1", ["3.4", "3.4.1"]),
    ("4.2.3.1", ["4.2", "4.2.3", "4.2.3.1"]),
    ("3.4", ["3.4"]),
    ("2024", ["2024"]),
    ("", []),
    ("  ", []),
])
def test_version_forms(version, forms):
    assert version_forms(version) == forms
    assert all(matches(form, version) for form in forms)  # every form a node is listed under is one it runs
