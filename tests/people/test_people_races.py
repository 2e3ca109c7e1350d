"""Rules that must hold when two requests race: one use per link, always one active admin."""

import threading

from sqlalchemy import func, select

from ticketer.errors import TicketerError
from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import invitations as invitation_service
from ticketer.services import users as user_service


def race(app, *actions):
    """Run each action(session) in its own thread and app context, started together; return outcomes."""
    barrier = threading.Barrier(len(actions))
    outcomes: list = [None] * len(actions)

    def run(index, action):
        with app.app_context():
            try:
                barrier.wait(timeout=120)  # a hang guard: threads start late on a busy machine
                outcomes[index] = action(_db.session)
                _db.session.commit()
            except TicketerError as error:
                _db.session.rollback()
                outcomes[index] = error
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=run, args=(i, action)) for i, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_an_invitation_accepted_twice_at_once_makes_one_member(app, make_user):
    admin_id = make_user("admin")
    with app.app_context():
        link = invitation_service.invite("ana@example.com", "agent", by=_db.session.get(User, admin_id))
        _db.session.commit()
        token = link.token

    def accept(name):
        return lambda session: invitation_service.accept_invitation(token, name=name, password="a-long-password").id

    outcomes = race(app, accept("First"), accept("Second"))
    assert sorted(type(o).__name__ for o in outcomes) == ["LinkUnusable", "int"]
    with app.app_context():
        count = _db.session.scalar(select(func.count()).select_from(User).where(User.email == "ana@example.com"))
        assert count == 1


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, make_user):
    first, second = make_user("admin"), make_user("admin")

    def demote(target, by_id):
        return lambda session: user_service.change_role(target, "agent", by=session.get(User, by_id))

    outcomes = race(app, demote(second, first), demote(first, second))
    # The later one is refused: the last admin (or, when the other went first, no longer an admin).
    assert sorted(type(o).__name__ for o in outcomes) in (["Conflict", "bool"], ["PermissionDenied", "bool"])
    with app.app_context():
        admins = _db.session.scalar(select(func.count()).select_from(User).where(User.role == "admin"))
        assert admins == 1
