"""The admin Connections page: add, edit (the token is write-only), Test connection, remove."""

from ticketer.extensions import db
from ticketer.models.connections import Connection


def add_through_the_form(client, rapidpro, name="Soporte", token=None):
    return client.post(
        "/admin/connections/new/",
        data={"name": name, "base_url": rapidpro.url, "api_token": token or rapidpro.token, "silence_bot": "y"},
        follow_redirects=True,
    )


def test_an_admin_adds_a_connection_and_the_token_is_never_shown(client, login_as, rapidpro, app):
    login_as("admin")
    page = add_through_the_form(client, rapidpro)
    assert page.status_code == 200
    with app.app_context():
        connection = db.session.execute(db.select(Connection)).scalar_one()
        assert (connection.name, connection.api_token, connection.silence_bot) == ("Soporte", rapidpro.token, True)
        connection_id = connection.id
    listing = client.get("/admin/connections/").get_data(as_text=True)
    assert "Soporte" in listing and rapidpro.url in listing
    edit = client.get(f"/admin/connections/edit/?id={connection_id}").get_data(as_text=True)
    assert "Soporte" in edit
    for html in (listing, edit):
        assert rapidpro.token not in html and rapidpro.token[:10] not in html


def test_editing_with_an_empty_token_keeps_it_and_a_new_one_replaces_it(client, login_as, rapidpro, app):
    login_as("admin")
    add_through_the_form(client, rapidpro)
    with app.app_context():
        connection_id = db.session.execute(db.select(Connection.id)).scalar_one()
    form = {"name": "Soporte Quito", "base_url": rapidpro.url + "/", "api_token": "", "silence_bot": ""}
    client.post(f"/admin/connections/edit/?id={connection_id}", data=form, follow_redirects=True)
    with app.app_context():
        connection = db.session.get(Connection, connection_id)
        assert (connection.name, connection.api_token, connection.silence_bot) == (
            "Soporte Quito",
            rapidpro.token,
            False,
        )
    client.post(
        f"/admin/connections/edit/?id={connection_id}", data={**form, "api_token": "new-token"}, follow_redirects=True
    )
    with app.app_context():
        assert db.session.get(Connection, connection_id).api_token == "new-token"


def test_a_taken_name_is_a_form_error_and_saves_nothing(client, login_as, rapidpro, app):
    login_as("admin")
    add_through_the_form(client, rapidpro)
    page = add_through_the_form(client, rapidpro, name="SOPORTE").get_data(as_text=True)
    assert "exists already" in page
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Connection)).scalar() == 1


def test_test_connection_shows_the_workspace_name_or_the_exact_error(client, login_as, rapidpro, app):
    login_as("admin")
    add_through_the_form(client, rapidpro, name="Good")
    add_through_the_form(client, rapidpro, name="Bad", token="wrong-token")
    with app.app_context():
        ids = dict(db.session.execute(db.select(Connection.name, Connection.id)).all())
    page = client.post(
        "/admin/connections/action/",
        data={"action": "test", "rowid": [str(ids["Good"]), str(ids["Bad"])]},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Good: connected to workspace &#39;Soporte Quito&#39;." in page
    assert "Test connection failed: The workspace refused the API token (HTTP 403)." in page


def test_remove(client, login_as, rapidpro, app):
    login_as("admin")
    add_through_the_form(client, rapidpro)
    with app.app_context():
        connection_id = db.session.execute(db.select(Connection.id)).scalar_one()
    client.post("/admin/connections/delete/", data={"id": str(connection_id)}, follow_redirects=True)
    with app.app_context():
        assert db.session.get(Connection, connection_id) is None


def test_supervisors_may_not_enter(client, login_as):
    login_as("supervisor")
    assert client.get("/admin/connections/").status_code == 403
    assert client.post("/admin/connections/new/", data={"name": "x"}).status_code == 403
