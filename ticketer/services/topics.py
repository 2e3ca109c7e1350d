"""Topics: categories of tickets, unique by name ignoring case, with a default "General"."""

from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.exc import IntegrityError

from ticketer.errors import NotFound, ValidationError
from ticketer.extensions import db
from ticketer.models import Topic, User
from ticketer.roles import Capability, require
from ticketer.services.validation import clean_text

TOPIC_NAME_MAX_LENGTH = 64


def _clean_name(name: str | None) -> str:
    return " ".join(clean_text(name, field="name", max_length=TOPIC_NAME_MAX_LENGTH, required=True).split())


def find_topic_by_name(name: str) -> Topic | None:
    # The database's lower() on both sides, as in the unique index (SQLite's only folds ASCII).
    return db.session.execute(
        db.select(Topic).where(func.lower(Topic.name) == func.lower(literal(name)))
    ).scalar_one_or_none()


def default_topic() -> Topic:
    """The default topic "General", created on first use."""
    topic = db.session.execute(db.select(Topic).where(Topic.is_default.is_(True))).scalar_one_or_none()
    if topic is None:
        topic = _find_or_insert(Topic.DEFAULT_NAME)
        topic.is_default = True
        db.session.flush()
    return topic


def _find_or_insert(name: str) -> Topic:
    """The topic with this cleaned name; concurrent creators of one name end up with the same row."""
    topic = find_topic_by_name(name)
    if topic is not None:
        return topic
    try:
        with db.session.begin_nested():
            topic = Topic(name=name)
            db.session.add(topic)
    except IntegrityError:
        topic = find_topic_by_name(name)
        if topic is None:
            raise ValidationError("That topic name can't be used.", field="topic") from None
    return topic


def check_topic_name(name: str | None, *, topic_id: int | None = None) -> str:
    """Return the cleaned name, or raise ValidationError when it is empty, too long or taken."""
    cleaned = _clean_name(name)
    existing = find_topic_by_name(cleaned)
    if existing is not None and existing.id != topic_id:
        raise ValidationError(f'A topic named "{existing.name}" already exists.', field="name")
    return cleaned


def create_topic(name: str, *, by: User | None) -> Topic:
    """Create a topic; the name must be unique ignoring case."""
    require(by, Capability.MANAGE_TOPICS)
    topic = Topic(name=check_topic_name(name))
    db.session.add(topic)
    db.session.flush()
    return topic


def rename_topic(topic_id: int, name: str, *, by: User | None) -> Topic:
    """Rename a topic; the new name must be unique ignoring case."""
    require(by, Capability.MANAGE_TOPICS)
    topic = db.session.get(Topic, topic_id)
    if topic is None:
        raise NotFound("That topic doesn't exist.")
    topic.name = check_topic_name(name, topic_id=topic_id)
    db.session.flush()
    return topic


_TOPICS = Topic.__table__
_ID_AND_NAME_BY_NAME = select(_TOPICS.c.id, _TOPICS.c.name).where(
    func.lower(_TOPICS.c.name) == func.lower(bindparam("name"))
)
_DEFAULT_ID_AND_NAME = select(_TOPICS.c.id, _TOPICS.c.name).where(_TOPICS.c.is_default.is_(True))


def topic_id_and_name(name: str | None) -> tuple[int, str]:
    """get_or_create_topic() as (id, name): one prebuilt query when the topic exists (every API open)."""
    if name is None or not name.strip():
        row = db.session.execute(_DEFAULT_ID_AND_NAME).first()
    else:
        row = db.session.execute(_ID_AND_NAME_BY_NAME, {"name": _clean_name(name)}).first()
    if row is None:
        topic = get_or_create_topic(name)
        return topic.id, topic.name
    return row.id, row.name


def get_or_create_topic(name: str | None) -> Topic:
    """The topic with this name (ignoring case), created when unknown; the default when no name is given.

    Flows may name topics that don't exist yet, so no permission is needed.
    """
    if name is None or not name.strip():
        return default_topic()
    return _find_or_insert(_clean_name(name))
