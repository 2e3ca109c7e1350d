"""Flows and triggers through the services: rules, validation, permissions; and the scheduler's job set-up."""

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from tests.factories import make_ticket
from ticketer import jobs, scheduler
from ticketer.errors import PermissionDenied, ValidationError
from ticketer.models import Message, User
from ticketer.models.flows import Flow
from ticketer.services import flows as flow_service
from ticketer.services import tickets as ticket_service


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
def test_only_admins_manage_flows_and_triggers(db, make_user, role, builtin_flow):
    user = db.session.get(User, make_user(role))
    with pytest.raises(PermissionDenied):
        flow_service.create_flow(flow_service.FlowSettings(name="X", engine="builtin", templates="Hi"), by=user)
    with pytest.raises(PermissionDenied):
        flow_service.create_trigger(flow_id=builtin_flow.id, by=user)


@pytest.mark.parametrize(
    "values, field",
    [
        ({"name": "", "engine": "builtin", "templates": "Hi"}, "name"),
        ({"name": "X", "engine": "sms", "templates": "Hi"}, "engine"),
        ({"name": "X", "engine": "builtin", "templates": ""}, "templates"),
        ({"name": "X", "engine": "builtin", "templates": "\n".join("m" * 11)}, "templates"),
        ({"name": "X", "engine": "builtin", "templates": "x" * 5000}, "templates"),
        ({"name": "X", "engine": "builtin", "templates": "Hi", "sends_replies": True}, "sends_replies"),
        ({"name": "X", "engine": "rapidpro", "base_url": "https://rp.example.org", "api_token": "t"}, "uuid"),
        (
            {"name": "X", "engine": "rapidpro", "uuid": "not-a-uuid", "base_url": "https://a.b", "api_token": "t"},
            "uuid",
        ),
        (
            {"name": "X", "engine": "rapidpro", "uuid": "9b5f1c1e-7d0a-4c55-8f5e-2f7f2a3f6b10", "base_url": "ftp://a"},
            "base_url",
        ),
        (
            {
                "name": "X",
                "engine": "rapidpro",
                "uuid": "9b5f1c1e-7d0a-4c55-8f5e-2f7f2a3f6b10",
                "base_url": "https://a",
            },
            "api_token",
        ),
        ({"name": "X", "engine": "webhook", "webhook_url": "javascript:alert(1)"}, "webhook_url"),
        (
            {"name": "X", "engine": "webhook", "webhook_url": "https://h.example", "webhook_secret": "short"},
            "webhook_secret",
        ),
    ],
)
def test_flow_settings_are_validated_by_field(db, admin, values, field):
    with pytest.raises(ValidationError) as error:
        flow_service.create_flow(flow_service.FlowSettings(**values), by=admin)
    assert field in error.value.fields


def test_webhook_secret_is_generated_and_one_flow_sends_replies(db, admin):
    first = flow_service.create_flow(
        flow_service.FlowSettings(name="A", engine="webhook", webhook_url="https://h.example/a", sends_replies=True),
        by=admin,
    )
    assert len(first.webhook_secret) >= 32
    second = flow_service.create_flow(
        flow_service.FlowSettings(name="B", engine="webhook", webhook_url="https://h.example/b", sends_replies=True),
        by=admin,
    )
    db.session.expire_all()
    assert [f.name for f in db.session.execute(select(Flow).where(Flow.sends_replies)).scalars()] == ["B"]
    assert flow_service.reply_flow().id == second.id
    with pytest.raises(ValidationError) as error:
        flow_service.create_flow(
            flow_service.FlowSettings(
                name="C", engine="rapidpro", uuid=second.uuid, base_url="https://rp.example", api_token="t"
            ),
            by=admin,
        )
    assert "uuid" in error.value.fields


def test_trigger_rules(db, admin, builtin_flow):
    topic_id = make_ticket(topic="Billing").topic_id
    with pytest.raises(ValidationError) as error:
        flow_service.create_trigger(flow_id=None, by=admin)
    assert "flow_id" in error.value.fields
    with pytest.raises(ValidationError) as error:
        flow_service.create_trigger(flow_id=builtin_flow.id, delay_minutes=-1, by=admin)
    assert "delay_minutes" in error.value.fields
    with pytest.raises(ValidationError):
        flow_service.create_trigger(flow_id=builtin_flow.id, topic_id=987654, by=admin)
    billing = flow_service.create_trigger(flow_id=builtin_flow.id, topic_id=topic_id, by=admin)
    with pytest.raises(ValidationError) as error:
        flow_service.create_trigger(flow_id=builtin_flow.id, topic_id=topic_id, by=admin)
    assert "already an active trigger for this topic" in error.value.message
    # Turn the first off, and a second one for the topic may be active.
    flow_service.update_trigger(
        billing.id, flow_id=builtin_flow.id, topic_id=topic_id, delay_minutes=0, active=False, by=admin
    )
    flow_service.create_trigger(flow_id=builtin_flow.id, topic_id=topic_id, by=admin)


def test_the_scheduler_has_the_dispatch_job_with_a_fixed_id_in_utc(app):
    built = scheduler.build_scheduler(app, BackgroundScheduler)
    built.start(paused=True)
    try:
        job = built.get_job(scheduler.DISPATCH_JOB_ID)
        assert job.func is jobs.dispatch_due
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval.total_seconds() == app.config["DISPATCH_INTERVAL_SECONDS"]
        assert str(built.timezone) == "UTC"
        count = len(built.get_jobs())
        # Adding it again replaces it (replace_existing=True): no second copy.
        built.add_job(jobs.dispatch_due, "interval", seconds=5, id=scheduler.DISPATCH_JOB_ID, replace_existing=True)
        assert len(built.get_jobs()) == count
    finally:
        built.shutdown(wait=False)


def test_the_job_sends_what_is_due(app, db, admin):
    ticket = make_ticket()
    ticket_service.reply(ticket.id, "Hello", by=admin)
    db.session.commit()
    db.session.remove()
    jobs.bind_app(app)
    assert jobs.dispatch_due() == {"sent": 1, "retrying": 0, "failed": 0, "lost": 0}
    assert db.session.execute(select(Message.status)).scalar_one() == "sent"
