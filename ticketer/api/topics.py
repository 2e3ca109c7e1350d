"""Topics: list them with their ticket counts, and create one."""

from sqlalchemy import func, select

from ticketer.api import bp
from ticketer.api.auth import require
from ticketer.api.errors import documents_errors
from ticketer.api.idempotency import HEADER_DOC, respond_once
from ticketer.api.schemas import TopicInSchema, TopicListSchema, TopicSchema
from ticketer.extensions import db
from ticketer.models import Ticket, Topic
from ticketer.roles import Capability
from ticketer.services import topics as topic_service


def _present(topic: Topic, counts: dict) -> dict:
    return {
        "uuid": topic.uuid,
        "name": topic.name,
        "counts": {"open": counts.get((topic.id, "open"), 0), "closed": counts.get((topic.id, "closed"), 0)},
        "system": topic.is_default,
        "created_on": topic.created_on,
    }


@bp.route("/topics", methods=["GET"])
@bp.response(200, TopicListSchema)
@documents_errors(bp, 401, 403)
def list_topics():
    """Every topic, by name, with its open and closed ticket counts (two queries)"""
    require(Capability.VIEW_TICKETS)
    topics = list(db.session.execute(select(Topic).order_by(func.lower(Topic.name))).scalars())
    counts = {
        (topic_id, status): total
        for topic_id, status, total in db.session.execute(
            select(Ticket.topic_id, Ticket.status, func.count()).group_by(Ticket.topic_id, Ticket.status)
        ).all()
    }
    return {"results": [_present(topic, counts) for topic in topics]}


@bp.route("/topics", methods=["POST"])
@bp.arguments(TopicInSchema())
@bp.response(201, TopicSchema)
@bp.doc(parameters=[HEADER_DOC])
@documents_errors(bp, 400, 401, 403, 413, 422)
def create_topic(data):
    """Create a topic (supervisors and admins); names are unique ignoring case"""
    user = require(Capability.MANAGE_TOPICS).user

    def work():
        topic = topic_service.create_topic(data["name"], by=user)
        return TopicSchema().dump(_present(topic, {})), 201

    return respond_once(work)
