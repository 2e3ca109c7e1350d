"""One TicketFilter read from a query string and written back: the list, its links, the bulk form
and the CSV export carry the same folder, status, search and filters."""

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.datastructures import MultiDict

from tests.factories import make_contact, make_ticket
from ticketer.clock import frozen
from ticketer.services import sla
from ticketer.services import topics as topic_service
from ticketer.ticket_lists import TicketFilter


def _link(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"\s+href="([^"]+)"', page)
    assert match, f"no #{element_id} link"
    return html.unescape(match.group(1))


def _exported_uuids(response) -> set[str]:
    assert response.status_code == 200
    return {row["ticket_uuid"] for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}


def test_export_csv_from_the_overdue_folder_exports_only_its_tickets(db, client, login_as):
    login_as("supervisor")
    topic = topic_service.get_or_create_topic("Billing")
    sla.configure_target(topic.id, first_reply_minutes=30, resolution_minutes=None, by=None)
    with frozen(datetime.now(UTC) - timedelta(hours=1)):
        late = make_ticket(make_contact("Late Lara"), topic="Billing")
    fresh = make_ticket(make_contact("Fresh Fred"), topic="Billing")
    db.session.commit()
    page = client.get("/admin/tickets/?folder=overdue").get_data(as_text=True)
    export = _link(page, "export-csv")
    assert "folder=overdue" in export
    assert _exported_uuids(client.get(export)) == {late.uuid}
    # The whole open folder, for comparison: both.
    assert _exported_uuids(client.get("/admin/dashboard/export.csv?folder=all&status=open")) >= {late.uuid, fresh.uuid}


def test_the_export_link_carries_search_topic_and_assignee(db, client, login_as, make_user):
    login_as("supervisor")
    agent = make_user("agent")
    wanted = make_ticket(make_contact("Wanda Wanted"), topic="Billing", assignee_id=agent)
    make_ticket(make_contact("Wanda Other"), topic="General", assignee_id=agent)
    make_ticket(make_contact("Someone Else"), topic="Billing", assignee_id=agent)
    db.session.commit()
    query = f"folder=all&status=open&q=Wanda&topic={wanted.topic_id}&assignee={agent}"
    page = client.get(f"/admin/tickets/?{query}").get_data(as_text=True)
    assert _exported_uuids(client.get(_link(page, "export-csv"))) == {wanted.uuid}


@pytest.mark.parametrize(
    "ticket_filter",
    [
        TicketFilter(),
        TicketFilter(folder="mine", status="closed"),
        TicketFilter(folder="unassigned", query="tel:+593 99", topic_id=3, assignee_id=7),
        TicketFilter(overdue=True),
        TicketFilter(overdue=True, query="Ana", topic_id=2),
    ],
    ids=repr,
)
def test_to_args_and_from_args_round_trip(ticket_filter):
    args = ticket_filter.to_args()
    assert all(value not in (None, "") for value in args.values())
    assert TicketFilter.from_args(MultiDict({k: str(v) for k, v in args.items()})) == ticket_filter


def test_from_args_falls_back_to_defaults_for_junk():
    junk = MultiDict({"folder": "nope", "status": "weird", "topic": "abc", "assignee": "-1", "q": "  a\x00b  "})
    assert TicketFilter.from_args(junk) == TicketFilter(query="ab")
    assert TicketFilter.from_args(MultiDict({"topic": str(2**64)})).topic_id is None
    assert TicketFilter.from_args(MultiDict(), default_folder="mine").folder == "mine"
    # The Overdue folder is open tickets of every folder, whatever status the URL says.
    overdue = TicketFilter.from_args(MultiDict({"folder": "overdue", "status": "closed"}))
    assert (overdue.folder, overdue.status, overdue.overdue) == ("all", "open", True)
    assert overdue.to_args(q="x") == {"folder": "overdue", "status": "open", "q": "x"}
