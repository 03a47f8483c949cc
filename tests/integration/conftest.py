import pytest

from tests.support.taskjson import SCENE


@pytest.fixture(scope="module")
def users(farm):
    """alice and bob on the module's farm (a module-scoped ``farm``), each with the scene of taskjson.SCENE in
    their input storage, so that the tasks of taskjson.blender() submit."""
    alice, bob = farm.create_user("alice"), farm.create_user("bob")
    farm.input_file(alice, SCENE)
    farm.input_file(bob, SCENE)
    return alice, bob
