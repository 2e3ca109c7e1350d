"""People: creating users and signing in. (Invitations and role changes: see people.py.)"""

import re

from ticketer.clock import utcnow
from ticketer.errors import ValidationError
from ticketer.extensions import db
from ticketer.models import User
from ticketer.roles import Role

PASSWORD_MIN_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def normalise_email(email: str | None) -> str:
    value = (email or "").strip().lower()
    if not _EMAIL.match(value) or len(value) > 254:
        raise ValidationError("Enter a valid email address.", field="email")
    return value


def check_role(role: str | None) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationError(f"Role must be one of: {', '.join(r.value for r in Role)}.", field="role") from None


def check_password(password: str | None, *, email: str) -> str:
    """Refuse passwords shorter than 10 characters or equal to the email."""
    password = password or ""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationError(f"Use at least {PASSWORD_MIN_LENGTH} characters.", field="password")
    if password.strip().lower() == email.lower():
        raise ValidationError("The password can't be your email address.", field="password")
    return password


def find_user_by_email(email: str) -> User | None:
    return db.session.execute(db.select(User).where(User.email == email.strip().lower())).scalar_one_or_none()


def create_user(email: str, *, role: str, password: str | None = None, name: str = "") -> User:
    """Create an active user (CLI, demo data and accepted invitations)."""
    address = normalise_email(email)
    if find_user_by_email(address) is not None:
        raise ValidationError("Someone with that email is already a member.", field="email")
    user = User(email=address, role=check_role(role).value, name=(name or "").strip()[:128], active=True)
    if password is not None:
        user.set_password(check_password(password, email=address))
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (never says which part was wrong)."""
    user = find_user_by_email(email or "")
    if user is None or not user.active or not user.check_password(password or ""):
        return None
    user.last_login_on = utcnow()
    return user
