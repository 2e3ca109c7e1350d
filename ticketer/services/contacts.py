"""Contacts: created or updated when a flow opens a ticket; matched by uuid, else by URN."""

import re
import uuid as uuid_lib
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from sqlalchemy import bindparam, delete, select, update

from ticketer import database
from ticketer.clock import utcnow
from ticketer.errors import NotFound, ValidationError
from ticketer.extensions import db
from ticketer.models import Contact, ContactURN, new_uuid

NAME_MAX_LENGTH = 128
FIELD_VALUE_MAX_LENGTH = 640
MAX_FIELDS = 100
MAX_URNS = 10
_URN = re.compile(r"^([a-z][a-z0-9]{1,31}):(\S{1,200})$")
_FIELD_KEY = re.compile(r"^[a-z][a-z0-9_]{0,35}$")
_LANGUAGE = re.compile(r"^[a-z]{3}$")


def normalise_urn(urn: str) -> tuple[str, str, str]:
    """Return (identity, scheme, path) for a URN like "tel:+593 98-765-4321", or raise ValidationError."""
    if not isinstance(urn, str):
        raise ValidationError("A URN must be text like tel:+593987654321.", field="urns")
    raw = urn.strip()
    scheme, _, path = raw.partition(":")
    scheme = scheme.lower()
    if scheme == "tel":
        path = re.sub(r"[\s\-().]", "", path)
    match = _URN.match(f"{scheme}:{path}")
    if not match:
        raise ValidationError(f'"{raw[:60]}" is not a URN like tel:+593987654321.', field="urns")
    return f"{scheme}:{path}", scheme, path


def _clean_fields(fields: Mapping | None) -> dict[str, str]:
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise ValidationError("Fields must be an object of key -> value.", field="fields")
    if len(fields) > MAX_FIELDS:
        raise ValidationError(f"At most {MAX_FIELDS} fields.", field="fields")
    cleaned: dict[str, str] = {}
    for key, value in fields.items():
        key = str(key).strip().lower()
        if not _FIELD_KEY.match(key):
            raise ValidationError(
                f'Field key "{key[:40]}" must start with a letter and use a-z, 0-9 and _ (36 at most).',
                field="fields",
            )
        text = "" if value is None else str(value)
        if len(text) > FIELD_VALUE_MAX_LENGTH:
            raise ValidationError(
                f'Field "{key}" is too long (limit {FIELD_VALUE_MAX_LENGTH} characters).', field="fields"
            )
        cleaned[key] = text
    return cleaned


class ContactRow(NamedTuple):
    """A contact as opening a ticket needs it (read or written with prebuilt statements)."""

    id: int
    uuid: str
    name: str
    language: str | None
    fields: dict
    primary_urn: str | None
    created: bool  # made by this call: it has no tickets yet


_CONTACTS = Contact.__table__
_URNS = ContactURN.__table__
_COLUMNS = (_CONTACTS.c.id, _CONTACTS.c.uuid, _CONTACTS.c.name, _CONTACTS.c.language, _CONTACTS.c.fields)
_BY_ID = select(*_COLUMNS).where(_CONTACTS.c.id == bindparam("id"))
_BY_UUID = select(*_COLUMNS).where(_CONTACTS.c.uuid == bindparam("uuid"))
_BY_URN = (
    select(*_COLUMNS)
    .join(_URNS, _URNS.c.contact_id == _CONTACTS.c.id)
    .where(_URNS.c.identity.in_(bindparam("identities", expanding=True)))
    .limit(1)
)
_URNS_OF = select(_URNS.c.identity).where(_URNS.c.contact_id == bindparam("id")).order_by(_URNS.c.id)
_URN_OWNER = select(_URNS.c.contact_id).where(_URNS.c.identity == bindparam("identity"))
_UPDATE = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("contact_id"))
    .values(
        name=bindparam("name"),
        language=bindparam("language"),
        fields=bindparam("fields", type_=_CONTACTS.c.fields.type),
        modified_on=bindparam("now", type_=_CONTACTS.c.modified_on.type),
    )
)
_DELETE = delete(_CONTACTS).where(_CONTACTS.c.id == bindparam("id"))
# ON CONFLICT DO NOTHING: a concurrent request that made the same contact or URN first wins,
# without aborting this transaction (PostgreSQL) or needing a savepoint.
_INSERT = database.insert_skipping_conflicts(
    _CONTACTS, ["uuid", "name", "language", "fields", "created_on", "modified_on"], returning="id"
)
_INSERT_URN = database.insert_skipping_conflicts(
    _URNS, ["contact_id", "identity", "scheme", "path"], returning="identity"
)


def _find(contact_uuid: str | None, identities: list[str]):
    if contact_uuid:
        row = db.session.execute(_BY_UUID, {"uuid": contact_uuid}).first()
        if row is not None:
            return row
    if identities:
        return db.session.execute(_BY_URN, {"identities": identities}).first()
    return None


def _add_urns(contact_id: int, parsed: list[tuple[str, str, str]]) -> list[str]:
    """Add these URNs to the contact; returns those that another contact holds."""
    taken = []
    for identity, scheme, path in parsed:
        added = db.session.execute(
            _INSERT_URN, {"contact_id": contact_id, "identity": identity, "scheme": scheme, "path": path}
        ).first()
        if added is None and db.session.execute(_URN_OWNER, {"identity": identity}).scalar() != contact_id:
            taken.append(identity)
    return taken


def contact_row(contact_id: int) -> ContactRow:
    """The contact as opening a ticket needs it, or NotFound."""
    row = db.session.execute(_BY_ID, {"id": contact_id}).first()
    if row is None:
        raise NotFound("That contact doesn't exist.")
    urn = db.session.execute(_URNS_OF, {"id": contact_id}).scalar()
    return ContactRow(*row, primary_urn=urn, created=False)


def upsert_contact_row(
    *,
    uuid: str | None = None,
    urns: Iterable[str] = (),
    name: str | None = None,
    language: str | None = None,
    fields: Mapping | None = None,
) -> ContactRow:
    """Find the contact by uuid, else by any of its URNs, and update it; create it when not found.

    Given fields are merged into the contact's fields; given URNs not yet known are added to it.
    A few prebuilt statements (this runs for every ticket a flow opens); upsert_contact() gives
    the model instead.
    """
    if uuid is not None:
        try:
            uuid = str(uuid_lib.UUID(str(uuid)))
        except ValueError:
            raise ValidationError("Contact uuid is not a valid UUID.", field="uuid") from None
    urns = list(urns or [])
    if len(urns) > MAX_URNS:
        raise ValidationError(f"At most {MAX_URNS} URNs.", field="urns")
    parsed = list({identity: (identity, scheme, path) for identity, scheme, path in map(normalise_urn, urns)}.values())
    if uuid is None and not parsed:
        raise ValidationError("A contact needs a uuid or at least one URN.", field="contact")
    if name is not None:
        if not isinstance(name, str) or len(name.strip()) > NAME_MAX_LENGTH:
            raise ValidationError(f"Contact name must be text of at most {NAME_MAX_LENGTH} characters.", field="name")
        name = " ".join(name.replace("\x00", "").split())
    if language is not None and language != "":
        if not isinstance(language, str) or not _LANGUAGE.fullmatch(language.lower()):
            raise ValidationError("Language must be a 3-letter ISO 639-3 code such as spa.", field="language")
        language = language.lower()
    cleaned_fields = _clean_fields(fields)
    identities = [identity for identity, _, _ in parsed]
    now = utcnow()

    for _attempt in range(2):
        found = _find(uuid, identities)
        if found is None:
            values = {"uuid": uuid or new_uuid(), "name": name or "", "language": language or None}
            contact_id = db.session.execute(
                _INSERT, {**values, "fields": cleaned_fields, "created_on": now, "modified_on": now}
            ).scalar()
            if contact_id is None:
                continue  # a concurrent request made this contact (same uuid) first: update theirs
            if _add_urns(contact_id, parsed):
                # ... or gave one of these URNs to a contact it made first: drop ours, update theirs.
                db.session.execute(_DELETE, {"id": contact_id})
                continue
            primary = identities[0] if identities else None
            return ContactRow(
                contact_id, values["uuid"], values["name"], values["language"], cleaned_fields, primary, True
            )
        merged = {**(found.fields or {}), **cleaned_fields}
        values = {"name": name or found.name, "language": language or found.language}
        db.session.execute(_UPDATE, {"contact_id": found.id, **values, "fields": merged, "now": now})
        known = list(db.session.execute(_URNS_OF, {"id": found.id}).scalars())
        if _add_urns(found.id, [urn for urn in parsed if urn[0] not in known]):
            raise ValidationError("One of these URNs belongs to another contact.", field="urns")
        _expire(Contact, found.id)
        primary = known[0] if known else (identities[0] if identities else None)
        return ContactRow(found.id, found.uuid, values["name"], values["language"], merged, primary, False)
    raise ValidationError("One of these URNs belongs to another contact.", field="urns")


def _expire(model, row_id: int) -> None:
    """A row changed by a prebuilt statement: a copy already loaded in the session reloads on next access."""
    loaded = db.session.identity_map.get(db.session.identity_key(model, row_id))
    if loaded is not None:
        db.session.expire(loaded)


def upsert_contact(**kwargs) -> Contact:
    """upsert_contact_row(), returning the model."""
    row = upsert_contact_row(**kwargs)
    return db.session.get(Contact, row.id)
