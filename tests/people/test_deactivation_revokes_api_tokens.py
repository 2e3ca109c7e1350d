"""A deactivated admin's API tokens are revoked: reactivating the person doesn't bring them back."""

from sqlalchemy import select

from ticketer.models import User
from ticketer.models.api import ApiToken
from ticketer.services import api_tokens
from ticketer.services import users as user_service


def works(client, key: str) -> bool:
    status = client.get("/api/v1/topics", headers={"Authorization": f"Token {key}"}).status_code
    assert status in (200, 401), status
    return status == 200


def test_deactivating_an_admin_revokes_their_tokens_for_good(db, client, make_user):
    boss = db.session.get(User, make_user("admin", email="boss@example.com"))
    leaver_id = make_user("admin", email="leaver@example.com")
    leaver = db.session.get(User, leaver_id)
    _, key = api_tokens.create_token("RapidPro", by=leaver)
    _, boss_key = api_tokens.create_token("Boss's", by=boss)
    db.session.commit()
    assert works(client, key)

    user_service.deactivate(leaver_id, by=boss)
    db.session.commit()
    assert not works(client, key)
    user_service.reactivate(leaver_id, by=boss)
    db.session.commit()

    assert not works(client, key)  # it stays revoked: the reactivating admin makes a new one if needed
    assert works(client, boss_key)  # nobody else's token is touched
    revoked = db.session.execute(select(ApiToken.revoked_on).where(ApiToken.created_by_id == leaver_id)).scalar_one()
    assert revoked is not None
