"""A contact's language is a whole 3-letter code: "spa\n" (Python's `$` matches before a trailing
newline) is refused by the API schema and by the contacts service alike."""

import pytest

from ticketer.errors import ValidationError
from ticketer.models import Contact
from ticketer.services import contacts as contact_service

TRAILING = ["spa\n", "spa\r\n", "spa ", " spa", "spa\x00", "sp\na"]


@pytest.mark.parametrize("language", TRAILING)
def test_the_api_refuses_a_language_with_anything_around_the_code(api, db, language):
    response = api.post("/api/v1/tickets", json={"contact": {"urn": "tel:+593911", "language": language}})
    assert response.status_code == 422 and "contact.language" in response.json["error"]["fields"]
    assert db.session.execute(db.select(Contact)).first() is None


@pytest.mark.parametrize("language", TRAILING)
def test_the_contacts_service_refuses_it_too(db, language):
    with pytest.raises(ValidationError) as refused:
        contact_service.upsert_contact_row(urns=["tel:+593911"], language=language)
    assert "language" in refused.value.fields


def test_a_plain_code_and_the_empty_language_still_work(api, db):
    for language in ("spa", "POR", ""):
        response = api.post("/api/v1/tickets", json={"contact": {"urn": "tel:+593911", "language": language}})
        assert response.status_code in (200, 201), response.json
    assert db.session.execute(db.select(Contact.language)).scalar_one() == "por"
