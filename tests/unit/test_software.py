"""Which node versions match which asked versions (rayfarm/domain/software.py), the forms querySoftwareDetail lists a
node's version in (server/hardware.py), and the error hints table."""

import ast
from pathlib import Path

import pytest

from rayfarm.domain import error_hints
from rayfarm.domain.software import known_to_no_node, matches, refuse_unknown_version
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server.hardware import version_forms

PACKAGE = Path(__file__).resolve().parents[2] / "rayfarm"


@pytest.mark.parametrize(("asked", "offered", "expected"), [
    ("3.4", "3.4.1", True), ("3.4", "3.4", True), ("3.4.1", "3.4.1", True), ("3", "3.6.2", True),
    (" 3.4 ", "3.4.1", True), ("", "3.4.1", True), ("", "", True),
    ("3.4", "3.41", False), ("3.4", "3.5.0", False), ("3.4.1", "3.4", False), ("3.4", "4.3.4", False),
    ("3.4", "", False), ("2.81", "2.8", False), ("3.4.1", "3.4.10", False), ("3.4-LTS", "3.4-lts", True),
])
def test_matches(asked, offered, expected):
    assert matches(asked, offered) is expected


@pytest.mark.parametrize(("asked", "offered", "refused"), [
    ("2.81", ["3.4.1", "4.2.0"], True),
    ("3.4", ["3.4.1", "4.2.0"], False),
    ("2.81", [], False),  # no node offers the software yet: nodes may register later
    ("2.81", ["3.4.1", ""], False),  # a node of unknown version may have it
    ("", ["3.4.1"], False),  # nothing asked: any version
])
def test_known_to_no_node(asked, offered, refused):
    assert known_to_no_node(asked, offered) is refused


def test_the_refusal_names_the_versions_nodes_have():
    with pytest.raises(ApiError) as caught:
        refuse_unknown_version("Blender", "2.81", ["4.2.0", "3.4.1", "3.4.1"])
    assert caught.value.code == Code.INVALID_PARAMETER
    assert "Blender 2.81" in caught.value.message and "3.4.1, 4.2.0" in caught.value.message


def _codes_raised() -> set[int]:
    """Every ``Code.X`` the package refers to outside the hints table (and the codes module itself)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("codes.py", "error_hints.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Code":
                found.add(int(getattr(Code, node.attr)))
    return found - {Code.OK}


def test_every_code_rayfarm_answers_with_has_a_hint_and_no_other():
    tips = {46000, 46001, 46002, 46003}
    assert set(error_hints.HINTS) - tips == _codes_raised()
    for hint in error_hints.HINTS.values():
        assert hint.type in (0, 1) and hint.description.endswith(".") and hint.solution


def test_hint_items_in_the_order_asked_each_once():
    items = error_hints.details(["46001", "937", "46001", "99999", "-1", "1" * 40], language=0)
    assert [(i["code"], i["type"], i["languageFlag"]) for i in items] == [("46001", 0, 0), ("937", 1, 0)]
    assert items[0]["desDescriptionCn"] == items[0]["desDescriptionEn"]


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
