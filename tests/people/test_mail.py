"""Mail bodies are templates (templates/mail/, text and HTML), sent over real SMTP (aiosmtpd).

Untrusted text (people's names, emails) is escaped in the HTML part and left as it is in the text part.
"""

import pytest

from ticketer import mail
from ticketer.models import User
from ticketer.services import invitations as invitation_service
from ticketer.services import password_resets as password_reset_service

HOSTILE_NAME = '<b>Boss</b> & "Co" <script>alert(1)</script>'
ESCAPED_NAME = "&lt;b&gt;Boss&lt;/b&gt; &amp; &#34;Co&#34; &lt;script&gt;alert(1)&lt;/script&gt;"


def parts(message) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


@pytest.fixture
def admin(db, make_user):
    return db.session.get(User, make_user("admin", email="boss@example.com", name=HOSTILE_NAME))


def check_link_mail(message, link_url: str) -> str:
    text, html = parts(message)
    assert HOSTILE_NAME in text and link_url in text
    assert ESCAPED_NAME in html and "<b>" not in html and "<script>" not in html
    assert f'href="{link_url}"' in html
    return html


def test_the_invitation_mail_has_a_text_and_an_escaped_html_part(db, admin, smtp_server):
    link = invitation_service.invite("ana@example.com", "agent", by=admin)
    db.session.commit()
    assert invitation_service.deliver_invitation(link) is None
    (message,) = smtp_server.wait_for(1)
    assert message["Subject"] == "You're invited to Ticketer" and message["To"] == "ana@example.com"
    html = check_link_mail(message, link.url)
    assert "as agent" in html and f"{link.expires_on:%Y-%m-%d %H:%M} UTC" in html
    assert smtp_server.links(message) == [link.url]


def test_the_password_reset_mail_has_a_text_and_an_escaped_html_part(db, admin, make_user, smtp_server):
    agent_id = make_user("agent", email="ana@example.com")
    link = password_reset_service.send_password_reset(agent_id, by=admin)
    db.session.commit()
    assert password_reset_service.deliver_password_reset(link) is None
    (message,) = smtp_server.wait_for(1)
    assert message["Subject"] == "Set a new Ticketer password"
    html = check_link_mail(message, link.url)
    assert "ana@example.com" in html


def test_a_subject_never_spans_lines(db, smtp_server):
    # A header with a line break would be refused (or, elsewhere, add headers): it is folded into one line.
    composed = mail.Mail(subject="SLA missed\r\nBcc: evil@example.com", text="Hello", html="<p>Hello</p>")
    mail.send_mail("ana@example.com", composed)
    (message,) = smtp_server.wait_for(1)
    assert message["Subject"] == "SLA missed Bcc: evil@example.com" and message["Bcc"] is None
