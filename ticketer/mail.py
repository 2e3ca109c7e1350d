"""Outgoing mail over SMTP (MAIL_* settings). With no MAIL_SERVER, the mail is printed to the console.

Bodies are Jinja templates, as in microblog: `templates/mail/<name>.txt` and `<name>.html`, rendered
by `render_mail`; the HTML part autoescapes (untrusted names stay text), the text part doesn't.
"""

import smtplib
import ssl
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app, render_template

SMTP_TIMEOUT_SECONDS = 15


class MailDeliveryError(Exception):
    """The mail server could not be reached or refused the message."""


@dataclass(frozen=True)
class Mail:
    """A composed mail: subject, plain-text body and HTML body."""

    subject: str
    text: str
    html: str


def render_mail(name: str, *, subject: str, **context) -> Mail:
    """Render `templates/mail/<name>.txt` and `.html` with `context` (needs an app context only)."""
    return Mail(
        subject=subject,
        text=render_template(f"mail/{name}.txt", **context),
        html=render_template(f"mail/{name}.html", **context),
    )


def build_message(to: str, mail: Mail) -> EmailMessage:
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    # A line break in a header would be refused (or would add headers): one line, whatever the subject holds.
    message["Subject"] = " ".join(mail.subject.split())
    message["Message-ID"] = make_msgid(domain="ticketer")
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def send_mail(to: str, mail: Mail) -> None:
    """Send a mail (text and HTML parts); raises MailDeliveryError when the server is down or refuses it."""
    config = current_app.config
    message = build_message(to, mail)
    if not config.get("MAIL_SERVER"):
        # Local runs without a mail server: the person running `make run` can still follow the link.
        print(
            f"\n--- mail (MAIL_SERVER is not set, so printed instead of sent) ---\n"
            f"To: {to}\nSubject: {message['Subject']}\n\n{mail.text}\n---",
            file=sys.stdout,
        )
        sys.stdout.flush()
        current_app.logger.info("Mail to %s printed to the console (no MAIL_SERVER).", to)
        return
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], int(config["MAIL_PORT"]), timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        current_app.logger.warning("Sending mail to %s failed: %s", to, error)
        raise MailDeliveryError(str(error) or error.__class__.__name__) from error
