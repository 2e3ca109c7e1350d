"""Contacts: created or updated when a flow opens a ticket; matched by uuid, else by URN."""

import re
import uuid as uuid_lib
from collections.abc import Iterable, Mapping

from sqlalchemy.exc import IntegrityError

from ticketer.clock import utcnow
from ticketer.errors import ValidationError
from ticketer.extensions import db
from ticketer.models import Contact, ContactURN

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


def _find(contact_uuid: str | None, identities: list[str]) -> Contact | None:
    if contact_uuid:
        contact = db.session.execute(db.select(Contact).where(Contact.uuid == contact_uuid)).scalar_one_or_none()
        if contact is not None:
            return contact
    if identities:
        return db.session.execute(
            db.select(Contact).join(ContactURN).where(ContactURN.identity.in_(identities)).limit(1)
        ).scalar_one_or_none()
    return None


def upsert_contact(
    *,
    uuid: str | None = None,
    urns: Iterable[str] = (),
    name: str | None = None,
    language: str | None = None,
    fields: Mapping | None = None,
    _retry: bool = True,
) -> Contact:
    """Find the contact by uuid, else by any of its URNs, and update it; create it when not found.

    Given fields are merged into the contact's fields; given URNs not yet known are added to it.
    """
    if uuid is not None:
        try:
            uuid = str(uuid_lib.UUID(str(uuid)))
        except ValueError:
            raise ValidationError("Contact uuid is not a valid UUID.", field="uuid") from None
    urns = list(urns or [])
    if len(urns) > MAX_URNS:
        raise ValidationError(f"At most {MAX_URNS} URNs.", field="urns")
    parsed = [normalise_urn(urn) for urn in urns]
    if uuid is None and not parsed:
        raise ValidationError("A contact needs a uuid or at least one URN.", field="contact")
    if name is not None:
        if not isinstance(name, str) or len(name.strip()) > NAME_MAX_LENGTH:
            raise ValidationError(f"Contact name must be text of at most {NAME_MAX_LENGTH} characters.", field="name")
        name = " ".join(name.replace("\x00", "").split())
    if language is not None and language != "":
        if not isinstance(language, str) or not _LANGUAGE.match(language.lower()):
            raise ValidationError("Language must be a 3-letter ISO 639-3 code such as spa.", field="language")
        language = language.lower()
    cleaned_fields = _clean_fields(fields)

    identities = [identity for identity, _, _ in parsed]
    contact = _find(uuid, identities)
    now = utcnow()
    try:
        # Changes are made inside the savepoint, so a failed flush leaves no pending objects behind.
        with db.session.begin_nested():
            if contact is None:
                contact = Contact(uuid=uuid or str(uuid_lib.uuid4()), name=name or "", language=language or None)
                contact.fields = cleaned_fields
                contact.created_on = now
                db.session.add(contact)
            else:
                if name:
                    contact.name = name
                if language:
                    contact.language = language
                if cleaned_fields:
                    contact.fields = {**(contact.fields or {}), **cleaned_fields}
            contact.modified_on = now
            known = {urn.identity for urn in contact.urns}
            for identity, scheme, path in parsed:
                if identity not in known:
                    contact.urns.append(ContactURN(identity=identity, scheme=scheme, path=path))
                    known.add(identity)
            db.session.flush()
    except IntegrityError:
        # A concurrent request created the same contact (uuid or URN) first: update that one instead.
        if _retry:
            return upsert_contact(uuid=uuid, urns=urns, name=name, language=language, fields=fields, _retry=False)
        raise ValidationError("One of these URNs belongs to another contact.", field="urns") from None
    return contact
