"""Marshmallow schemas of the API: they validate requests and generate the OpenAPI document.

Shapes follow RapidPro's API v2 (tickets, topics, ticket_actions) where the concept is the same.
Unknown fields are refused and named (marshmallow's default RAISE).
"""

from datetime import UTC, datetime

import marshmallow as ma
from marshmallow import fields as mf
from marshmallow import validate

from ticketer.services.contacts import FIELD_VALUE_MAX_LENGTH, MAX_FIELDS, MAX_URNS, NAME_MAX_LENGTH
from ticketer.services.topics import TOPIC_NAME_MAX_LENGTH
from ticketer.services.validation import BODY_MAX_LENGTH, MESSAGE_MAX_LENGTH, NOTE_MAX_LENGTH

MAX_TICKETS_PER_ACTION = 100
PAGE_SIZE_MAX = 500
RESULTS_MAX = 200
URN_MAX_LENGTH = 255
# The same shapes the contact service enforces, so the OpenAPI document tells clients about them.
URN_PATTERN = r"^[A-Za-z][A-Za-z0-9]{1,31}:\S.*$"
FIELD_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,35}$"
LANGUAGE_PATTERN = r"^([A-Za-z]{3})?$"  # empty: no language (RapidPro sends "")


class FullMatch(validate.Regexp):
    """validate.Regexp on the whole value (Python's `$` also matches before a final newline: "spa\n")."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


def _urn(**kwargs) -> mf.String:
    return mf.String(
        validate=[
            validate.Length(max=URN_MAX_LENGTH),
            validate.Regexp(URN_PATTERN, error="Not a URN like tel:+593987654321."),
        ],
        **kwargs,
    )


def _field_key() -> mf.String:
    return mf.String(validate=validate.Regexp(FIELD_KEY_PATTERN, error="Start with a letter; use a-z, 0-9 and _."))


def _text(max_length: int, **kwargs) -> mf.String:
    return mf.String(validate=validate.Length(max=max_length), **kwargs)


class UTCDateTime(mf.AwareDateTime):
    """An ISO 8601 date-time with its offset, read as UTC; one that leaves the calendar in UTC
    (0001-01-01T00:00:00+14:00) is refused: no database column can hold it."""

    default_error_messages = {"out_of_range": "Out of range once converted to UTC."}

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("out_of_range") from None


# --- errors -----------------------------------------------------------------------------------


class ErrorDetailSchema(ma.Schema):
    code = mf.String(required=True, metadata={"description": "Stable machine-readable code, e.g. invalid"})
    message = mf.String(required=True, metadata={"description": "What went wrong, fit for a person"})
    fields = mf.Dict(
        keys=mf.String(),
        values=mf.String(),
        required=True,
        metadata={"description": "Field name (dotted for nested fields) -> what is wrong with it"},
    )


class ErrorSchema(ma.Schema):
    error = mf.Nested(ErrorDetailSchema, required=True)


# --- references shared by responses -----------------------------------------------------------


class ContactRefSchema(ma.Schema):
    uuid = mf.String(required=True, metadata={"format": "uuid"})
    name = mf.String(required=True)


class TopicRefSchema(ma.Schema):
    uuid = mf.String(required=True, metadata={"format": "uuid"})
    name = mf.String(required=True)


class UserRefSchema(ma.Schema):
    email = mf.String(required=True)
    name = mf.String(required=True)


class FlowRefSchema(ma.Schema):
    uuid = mf.String(required=True, allow_none=True)
    name = mf.String(required=True, allow_none=True)


class TicketRefSchema(ma.Schema):
    uuid = mf.String(required=True, metadata={"format": "uuid"})


# --- tickets ----------------------------------------------------------------------------------


class ContactInSchema(ma.Schema):
    uuid = mf.UUID(metadata={"description": "The flow engine's contact uuid; matched first"})
    urn = _urn(metadata={"description": "e.g. tel:+593987654321; matched when the uuid isn't"})
    urns = mf.List(_urn(), validate=validate.Length(max=MAX_URNS))
    name = _text(NAME_MAX_LENGTH, allow_none=True)
    language = mf.String(
        allow_none=True,
        validate=FullMatch(LANGUAGE_PATTERN, error="A 3-letter ISO 639-3 code such as spa."),
        metadata={"example": "spa"},
    )
    fields = mf.Dict(
        keys=_field_key(),
        values=mf.Raw(allow_none=True),
        validate=validate.Length(max=MAX_FIELDS),
        metadata={"description": f"Custom fields, key -> value (values at most {FIELD_VALUE_MAX_LENGTH} chars)"},
    )

    @ma.validates_schema
    def _needs_uuid_or_urn(self, data, **kwargs):
        if not data.get("uuid") and not data.get("urn") and not data.get("urns"):
            raise ma.ValidationError("A contact needs a uuid or a URN.", field_name="uuid")


class FlowInSchema(ma.Schema):
    uuid = mf.UUID(allow_none=True)
    name = _text(128, allow_none=True)


class TicketOpenSchema(ma.Schema):
    contact = mf.Nested(ContactInSchema, required=True)
    topic = _text(TOPIC_NAME_MAX_LENGTH, allow_none=True, metadata={"description": "Topic name; created if new"})
    assignee = mf.Email(allow_none=True, metadata={"description": "Email of an agent, supervisor or admin"})
    body = _text(
        BODY_MAX_LENGTH,
        load_default="",
        metadata={"description": "May use @results.NAME, @contact.name, @contact.urn, @fields.KEY, @ticket.topic"},
    )
    results = mf.Dict(
        keys=_text(64),
        values=mf.Raw(allow_none=True),
        validate=validate.Length(max=RESULTS_MAX),
        metadata={"description": "The flow's results: name -> {value, category} (RapidPro's @results) or value"},
    )
    fields = mf.Dict(
        keys=_field_key(),
        values=mf.Raw(allow_none=True),
        validate=validate.Length(max=MAX_FIELDS),
        metadata={"description": "Contact fields to set (merged into contact.fields)"},
    )
    flow = mf.Nested(FlowInSchema, allow_none=True)
    connection = _text(
        64,
        allow_none=True,
        metadata={
            "description": "Name or uuid of the workspace connection the contact talks through "
            "(default: the only connection)"
        },
    )


def _moment(**kwargs) -> mf.String:
    """A moment that ticketer/ticket_json.py has already written as ISO 8601 text."""
    metadata = {"format": "date-time", **kwargs.pop("metadata", {})}
    return mf.String(metadata=metadata, **kwargs)


class TicketSchema(ma.Schema):
    """Documents ticketer/ticket_json.py's shape, the one a ticket has everywhere (it builds the values)."""

    uuid = mf.String(required=True, metadata={"format": "uuid"})
    contact = mf.Nested(ContactRefSchema, required=True)
    status = mf.String(required=True, validate=validate.OneOf(["open", "closed"]))
    topic = mf.Nested(TopicRefSchema, required=True)
    assignee = mf.Nested(UserRefSchema, required=True, allow_none=True)
    body = mf.String(required=True)
    results = mf.Dict(required=True)
    opened_on = _moment(required=True)
    opened_by = mf.Nested(UserRefSchema, required=True, allow_none=True)
    opened_in = mf.Nested(FlowRefSchema, required=True, allow_none=True)
    modified_on = _moment(required=True, metadata={"description": "Last activity on the ticket"})
    closed_on = _moment(required=True, allow_none=True)


class TicketListArgsSchema(ma.Schema):
    status = mf.String(validate=validate.OneOf(["open", "closed"]))
    topic = _text(TOPIC_NAME_MAX_LENGTH, metadata={"description": "Topic uuid or name"})
    assignee = _text(254, metadata={"description": "Assignee email; empty for unassigned tickets"})
    contact = mf.UUID(metadata={"description": "Contact uuid"})
    after = UTCDateTime(metadata={"description": "Only tickets modified after this time"})
    before = UTCDateTime(metadata={"description": "Only tickets modified before this time"})
    cursor = _text(200, metadata={"description": "Set by the previous page's next URL: follow next as it is"})
    limit = mf.Integer(load_default=50, validate=validate.Range(min=1, max=PAGE_SIZE_MAX))


class TicketPageSchema(ma.Schema):
    next = mf.String(required=True, allow_none=True, metadata={"description": "Cursor of the next page"})
    results = mf.List(mf.Nested(TicketSchema), required=True)


class TicketActionSchema(ma.Schema):
    tickets = mf.List(mf.UUID(), required=True, validate=validate.Length(min=1, max=MAX_TICKETS_PER_ACTION))
    action = mf.String(
        required=True, validate=validate.OneOf(["assign", "add_note", "change_topic", "close", "reopen"])
    )
    assignee = mf.Email(allow_none=True, metadata={"description": "assign: email, or null to unassign"})
    note = _text(NOTE_MAX_LENGTH, allow_none=True, metadata={"description": "add_note (required), assign"})
    topic = _text(TOPIC_NAME_MAX_LENGTH, metadata={"description": "change_topic: topic uuid or name"})


class TicketActionResultSchema(ma.Schema):
    changed = mf.Integer(required=True)
    skipped = mf.Integer(required=True)


# --- messages ---------------------------------------------------------------------------------


class MessageInSchema(ma.Schema):
    contact = mf.UUID(metadata={"description": "Contact uuid"})
    urn = _urn(metadata={"description": "Contact URN, when no uuid is given"})
    text = mf.String(required=True, validate=validate.Length(min=1, max=MESSAGE_MAX_LENGTH))

    @ma.validates_schema
    def _needs_contact(self, data, **kwargs):
        if not data.get("contact") and not data.get("urn"):
            raise ma.ValidationError("Give the contact's uuid or a URN.", field_name="contact")


class MessageSchema(ma.Schema):
    uuid = mf.String(required=True, metadata={"format": "uuid"})
    contact = mf.Nested(ContactRefSchema, required=True)
    ticket = mf.Nested(TicketRefSchema, required=True, allow_none=True)
    direction = mf.String(required=True, validate=validate.OneOf(["in", "out"]))
    text = mf.String(required=True)
    status = mf.String(required=True)
    created_by = mf.Nested(UserRefSchema, required=True, allow_none=True)
    created_on = mf.DateTime(required=True)


class MessageListArgsSchema(ma.Schema):
    contact = _text(URN_MAX_LENGTH, required=True, metadata={"description": "Contact uuid or URN"})
    direction = mf.String(validate=validate.OneOf(["in", "out"]))
    cursor = _text(40)
    limit = mf.Integer(load_default=100, validate=validate.Range(min=1, max=PAGE_SIZE_MAX))


class MessagePageSchema(ma.Schema):
    next = mf.String(required=True, allow_none=True)
    results = mf.List(mf.Nested(MessageSchema), required=True)


# --- topics, users, contacts ------------------------------------------------------------------


class TopicCountsSchema(ma.Schema):
    open = mf.Integer(required=True)
    closed = mf.Integer(required=True)


class TopicSchema(ma.Schema):
    uuid = mf.String(required=True, metadata={"format": "uuid"})
    name = mf.String(required=True)
    counts = mf.Nested(TopicCountsSchema, required=True)
    system = mf.Boolean(required=True, metadata={"description": "True for the default topic"})
    created_on = mf.DateTime(required=True)


class TopicListSchema(ma.Schema):
    results = mf.List(mf.Nested(TopicSchema), required=True)


class TopicInSchema(ma.Schema):
    name = mf.String(required=True, validate=validate.Length(min=1, max=TOPIC_NAME_MAX_LENGTH))


class UserSchema(ma.Schema):
    email = mf.String(required=True)
    name = mf.String(required=True)
    role = mf.String(required=True, validate=validate.OneOf(["admin", "supervisor", "agent", "viewer"]))
    created_on = mf.DateTime(required=True)


class UserListSchema(ma.Schema):
    results = mf.List(mf.Nested(UserSchema), required=True)


class ContactSchema(ma.Schema):
    uuid = mf.String(required=True, metadata={"format": "uuid"})
    name = mf.String(required=True)
    language = mf.String(required=True, allow_none=True)
    urns = mf.List(mf.String(), required=True)
    fields = mf.Dict(keys=mf.String(), values=mf.String(), required=True)
    open_ticket = mf.Nested(TicketRefSchema, required=True, allow_none=True)
    created_on = mf.DateTime(required=True)
    modified_on = mf.DateTime(required=True)
