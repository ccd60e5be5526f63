"""docs/api.md's roles table stays true: every action an /api/v1/ endpoint needs is in it, with the roles that
forge_site.roles.PERMISSIONS gives it. A new endpoint with a new action fails here until the table names it."""

from __future__ import annotations

import re
from pathlib import Path

from forge_site.roles import PERMISSIONS, PUBLIC, SIGNED_IN, Role, view_actions
from tests.forge_site.test_permission_matrix import all_routes

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
WHO = {
    "engineers": Role.ENGINEER,
    "managers": Role.MANAGER,
    "officers": Role.OFFICER,
    "any signed-in user": SIGNED_IN,
    "anyone": PUBLIC,
}


def documented_roles() -> dict[str, frozenset[str]]:
    """{action: roles} from the rows of the roles table: | `action` | engineers, managers | operations |."""
    table = API_DOC.read_text().split("## Roles", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w.]+)` \| ([^|]+) \|", table, flags=re.MULTILINE)
    return {action: frozenset(WHO[who.strip()] for who in people.split(",")) for action, people in rows}


def api_actions() -> set[str]:
    actions: set[str] = set()
    for route in all_routes():
        if route.route.startswith("api/v1/"):
            rule = view_actions(route.callback)
            actions.update(rule.values() if isinstance(rule, dict) else [rule] if rule else [])
    return actions


def test_every_api_action_is_in_the_roles_table_with_its_roles():
    documented = documented_roles()
    needed = api_actions()
    assert {"version.evaluate", "job.cancel"} <= needed  # the two the table once lacked
    missing = sorted(needed - set(documented))
    assert not missing, f"docs/api.md's roles table lacks {missing}: add a row for each"
    wrong = {action: sorted(roles) for action, roles in documented.items() if PERMISSIONS.get(action) != roles}
    assert not wrong, f"docs/api.md gives these actions other roles than forge_site.roles.PERMISSIONS: {wrong}"
