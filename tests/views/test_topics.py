"""Topics in the panel: supervisors and admins list, create and rename them."""

from sqlalchemy import select

from ticketer.models import Topic


def test_supervisor_creates_and_renames_a_topic(db, client, login_as):
    login_as("supervisor")
    assert client.get("/admin/topics/").status_code == 200
    response = client.post("/admin/topics/new/", data={"name": "  Billing  "})
    assert response.status_code == 302
    topic = db.session.execute(select(Topic).where(Topic.name == "Billing")).scalar_one()
    response = client.post(f"/admin/topics/edit/?id={topic.id}", data={"name": "Invoices"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Topic, topic.id).name == "Invoices"
    assert b"Invoices" in client.get("/admin/topics/").data


def test_duplicate_name_ignoring_case_is_refused_by_the_field(db, client, login_as):
    login_as("admin")
    client.post("/admin/topics/new/", data={"name": "Billing"})
    response = client.post("/admin/topics/new/", data={"name": "BILLING"})
    assert response.status_code == 200  # Flask-Admin re-renders the form
    assert b"A topic named &#34;Billing&#34; already exists." in response.data
    assert len(db.session.execute(select(Topic)).scalars().all()) == 1


def test_empty_or_too_long_names_are_refused(db, client, login_as):
    login_as("admin")
    assert b"can&#39;t be empty" in client.post("/admin/topics/new/", data={"name": "   "}).data
    assert b"too long" in client.post("/admin/topics/new/", data={"name": "x" * 65}).data
    assert db.session.execute(select(Topic)).scalars().all() == []


def test_agents_and_viewers_cannot_manage_topics(client, login_as):
    for role in ("agent", "viewer"):
        login_as(role)
        assert client.get("/admin/topics/").status_code == 403
        assert client.post("/admin/topics/new/", data={"name": "Sneaky"}).status_code == 403
