"""ticketer/roles.py: one capability table, one `require`, and every service checks through it."""

import re
from pathlib import Path

import pytest

from ticketer.errors import PermissionDenied
from ticketer.models import User
from ticketer.roles import ROLE_CAPABILITIES, Capability, Role, home_folder, require

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("capability", list(Capability))
def test_require_follows_the_table(role, capability):
    user = User(email="x@example.com", role=role.value, active=True)
    if capability in ROLE_CAPABILITIES[role]:
        require(user, capability)
    else:
        with pytest.raises(PermissionDenied, match=r"^Only .+ can .+\.$"):
            require(user, capability)


def test_an_inactive_user_can_do_nothing():
    with pytest.raises(PermissionDenied):
        require(User(email="x@example.com", role=Role.ADMIN.value, active=False), Capability.VIEW_TICKETS)


def test_the_system_may_unless_the_action_needs_a_person():
    require(None, Capability.MANAGE_PEOPLE)
    with pytest.raises(PermissionDenied, match="Only admins can manage people."):
        require(None, Capability.MANAGE_PEOPLE, system=False)


def test_agents_land_on_mine_and_the_others_on_all():
    assert {role: home_folder(role) for role in Role} == {
        Role.ADMIN: "all",
        Role.SUPERVISOR: "all",
        Role.AGENT: "mine",
        Role.VIEWER: "all",
    }


def test_no_module_has_a_permission_check_of_its_own():
    """Role checks go through roles.require / User.can, never a local helper or a role name."""
    offenders = []
    for path in [*ROOT.glob("ticketer/**/*.py"), *ROOT.glob("admin_views/**/*.py")]:
        text = path.read_text()
        if re.search(r"def (_require\w*|require_\w+)\(", text):
            offenders.append(f"{path.relative_to(ROOT)}: its own require helper")
        if re.search(r"\brole\s*[!=]=\s*[\"']", text):
            offenders.append(f"{path.relative_to(ROOT)}: compares a role name")
    assert offenders == []
