"""Outgoing mail over SMTP (MAIL_* settings). With no MAIL_SERVER, the mail is printed to the console."""

import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app

SMTP_TIMEOUT_SECONDS = 15


class MailDeliveryError(Exception):
    """The mail server could not be reached or refused the message."""


def build_message(to: str, subject: str, body: str) -> EmailMessage:
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="ticketer")
    message.set_content(body)
    return message


def send_mail(to: str, subject: str, body: str) -> None:
    """Send a plain-text mail; raises MailDeliveryError when the server is down or refuses it."""
    config = current_app.config
    message = build_message(to, subject, body)
    if not config.get("MAIL_SERVER"):
        # Local runs without a mail server: the person running `make run` can still follow the link.
        print(f"\n--- mail (MAIL_SERVER is not set, so printed instead of sent) ---\n{message}\n---", file=sys.stdout)
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
