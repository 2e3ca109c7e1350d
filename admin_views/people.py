"""People and invitations (admins only), Flask-Admin model views on the service-calling base.

People: change a role (the edit form, or "Make <role>" on the selected), deactivate, reactivate and send
a password reset link (actions, and buttons on each row). Invitations: invite emails with a role (the
create form), resend or cancel (actions and row buttons). Mail goes out after the commit, so a mail
server that is down loses nothing: the invitation shows "Sending failed" and Resend tries again.
"""

from flask import current_app, flash, g, redirect, url_for
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import SelectField, TextAreaField

from admin_views.base import PostRowAction, ServiceModelView
from ticketer.clock import utcnow
from ticketer.errors import ValidationError
from ticketer.extensions import db
from ticketer.models import User
from ticketer.models.people import Invitation
from ticketer.roles import Capability, Role
from ticketer.services import invitations as invitation_service
from ticketer.services import password_resets as password_reset_service
from ticketer.services import users as user_service
from ticketer.services.links import IssuedLink

ROLE_CHOICES = [(role.value, role.value.title()) for role in Role]
MAX_INVITATIONS = 20


def _ids(ids) -> list[int]:
    """The selected rows' ids that can be ids (a hand-made POST may send anything)."""
    return [int(i) for i in ids if str(i).isdigit() and int(i) < 2**63]


def _mail_outcome(error: str | None, sent: str, console: str, failed: str) -> None:
    if error is None and not current_app.config.get("MAIL_SERVER"):
        flash(console, "info")
    elif error is None:
        flash(sent, "success")
    else:
        flash(failed, "error")


def _when(view, context, row, name):
    value = getattr(row, name)
    return context.environment.filters["time_tag"](value) if value else ""


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


def _active(view, context, user: User, name):
    if user.active:
        return Markup('<span class="badge badge-success">active</span>')
    return Markup('<span class="badge badge-secondary">deactivated</span>')


def _name(view, context, user: User, name):
    if user.id == current_user.id:
        return Markup('{} <span class="badge badge-light">you</span>').format(user.name)
    return user.name


class PeopleView(ServiceModelView):
    """Everyone with a login. The last active admin can't be demoted or deactivated, nobody deactivates
    themselves, and deactivating someone unassigns their open tickets (an event on each)."""

    capability = write_capability = Capability.MANAGE_PEOPLE
    allow_create = False  # people join through an invitation
    form = RoleForm
    column_list = ("name", "email", "role", "last_login_on", "active")
    column_labels = {"last_login_on": "Last sign-in"}
    column_formatters = {"name": _name, "active": _active, "last_login_on": _when}
    column_searchable_list = ("name", "email")
    column_sortable_list = ("name", "email", "role", "last_login_on")
    column_default_sort = [("active", True), ("name", False), ("email", False)]
    column_extra_row_actions = [
        PostRowAction("password_reset", "Send password reset", show=lambda user: user.active),
        PostRowAction(
            "deactivate",
            "Deactivate",
            show=lambda user: user.active and user.id != current_user.id,
            class_="btn btn-sm btn-outline-danger",
        ),
        PostRowAction("reactivate", "Reactivate", show=lambda user: not user.active),
    ]

    def update_with_service(self, form, model) -> None:
        user_service.change_role(model.id, form.role.data, by=current_user)

    def get_save_return_url(self, model, is_created=False):
        if not current_user.can(Capability.MANAGE_PEOPLE):
            return url_for("tickets.index")  # an admin who made themselves something else
        return super().get_save_return_url(model, is_created)

    def _each(self, ids, call) -> None:
        for user_id in _ids(ids):
            self.call_service(lambda user_id=user_id: call(user_id))

    def _make(self, ids, role: Role):
        changed = []
        self._each(ids, lambda user_id: changed.append(user_service.change_role(user_id, role, by=current_user)))
        if any(changed):
            flash(f"Role changed to {role.value}: {sum(changed):,}.", "success")
        if not current_user.can(Capability.MANAGE_PEOPLE):
            return redirect(url_for("tickets.index"))  # an admin who made themselves something else
        return None

    @action("make_admin", "Make admin")
    def action_make_admin(self, ids):
        return self._make(ids, Role.ADMIN)

    @action("make_supervisor", "Make supervisor")
    def action_make_supervisor(self, ids):
        return self._make(ids, Role.SUPERVISOR)

    @action("make_agent", "Make agent")
    def action_make_agent(self, ids):
        return self._make(ids, Role.AGENT)

    @action("make_viewer", "Make viewer")
    def action_make_viewer(self, ids):
        return self._make(ids, Role.VIEWER)

    @action("deactivate", "Deactivate", "Deactivate the selected people? They are signed out at once.")
    def action_deactivate(self, ids):
        def deactivate(user_id):
            unassigned = user_service.deactivate(user_id, by=current_user)
            flash(
                f"Deactivated: they are signed out and can't sign in. {unassigned:,} open "
                f"ticket{'s' if unassigned != 1 else ''} unassigned.",
                "success",
            )

        self._each(ids, deactivate)

    @action("reactivate", "Reactivate")
    def action_reactivate(self, ids):
        def reactivate(user_id):
            if user_service.reactivate(user_id, by=current_user):
                flash("Reactivated: they can sign in again with their password.", "success")

        self._each(ids, reactivate)

    @action("password_reset", "Send password reset link")
    def action_password_reset(self, ids):
        links: list[IssuedLink] = []
        self._each(
            ids, lambda user_id: links.append(password_reset_service.send_password_reset(user_id, by=current_user))
        )
        for link in links:  # committed: now the mail
            error = password_reset_service.deliver_password_reset(link)
            db.session.commit()
            _mail_outcome(
                error,
                f"Password reset link sent to {link.email}.",
                f"No mail server is set up: the reset link for {link.email} was printed on the console.",
                f"Sending the password reset link to {link.email} failed ({error}). Try again later.",
            )


class InviteForm(FlaskForm):
    emails = TextAreaField("Emails", description=f"One per line, at most {MAX_INVITATIONS}.")
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.AGENT.value)


def _sent(view, context, invitation: Invitation, name):
    if invitation.send_error:
        return Markup(
            '<span class="badge badge-danger send-failed" title="{0}">Sending failed</span>'
            '<div class="small text-muted">{0}</div>'
        ).format(invitation.send_error)
    if invitation.last_sent_on:
        return _when(view, context, invitation, "last_sent_on")
    return Markup('<span class="text-muted">not yet</span>')


def _expires(view, context, invitation: Invitation, name):
    if invitation.expires_on <= utcnow():
        return Markup('<span class="badge badge-warning">Expired</span>')
    return _when(view, context, invitation, "expires_on")


class InvitationsView(ServiceModelView):
    """Pending invitations (not accepted or cancelled; expired ones too, so they can be sent again)."""

    capability = write_capability = Capability.MANAGE_PEOPLE
    allow_edit = False
    form = InviteForm
    error_fields = {"email": "emails", "role": "role"}
    column_list = ("email", "role", "invited_by", "last_sent_on", "expires_on")
    column_labels = {"last_sent_on": "Email sent", "invited_by": "Invited by"}
    column_formatters = {
        "invited_by": lambda view, context, invitation, name: (
            invitation.invited_by.display_name if invitation.invited_by else ""
        ),
        "last_sent_on": _sent,
        "expires_on": _expires,
    }
    column_sortable_list = ()
    column_default_sort = [("created_on", True), ("id", True)]
    column_extra_row_actions = [
        PostRowAction("resend", "Resend"),
        PostRowAction("cancel", "Cancel", class_="btn btn-sm btn-outline-secondary"),
    ]

    def get_query(self):
        return super().get_query().filter(Invitation.accepted_on.is_(None), Invitation.cancelled_on.is_(None))

    def create_with_service(self, form):
        """Invite every listed email, or none of them: a refused one rolls all back, by the field."""
        emails = [line.strip() for line in (form.emails.data or "").splitlines() if line.strip()]
        if not emails:
            raise ValidationError("Enter at least one email address.", field="email")
        if len(emails) > MAX_INVITATIONS:
            raise ValidationError(f"At most {MAX_INVITATIONS} emails at once.", field="email")
        twice = sorted({email.lower() for email in emails if [e.lower() for e in emails].count(email.lower()) > 1})
        if twice:
            raise ValidationError(f"Listed twice: {', '.join(twice)}.", field="email")
        g.issued_links = [invitation_service.invite(email, form.role.data, by=current_user) for email in emails]
        return db.session.get(Invitation, g.issued_links[-1].id)

    def after_model_change(self, form, model, is_created) -> None:
        self._deliver(g.pop("issued_links", []))

    def _deliver(self, links: list[IssuedLink]) -> None:
        """Send the mails after the invitations are committed, so a mail failure loses nothing."""
        for link in links:
            error = invitation_service.deliver_invitation(link)
            db.session.commit()
            _mail_outcome(
                error,
                f"Invitation {'sent again' if link.resent else 'sent'} to {link.email}.",
                f"No mail server is set up: the invitation to {link.email} was printed on the console.",
                f"The invitation to {link.email} is saved, but sending the email failed ({error}). "
                "Use Resend when the mail server works again.",
            )

    @action("resend", "Resend")
    def action_resend(self, ids):
        links: list[IssuedLink] = []
        for invitation_id in _ids(ids):
            self.call_service(
                lambda invitation_id=invitation_id: links.append(
                    invitation_service.resend_invitation(invitation_id, by=current_user)
                )
            )
        self._deliver(links)

    @action("cancel", "Cancel", "Cancel the selected invitations? Their links stop working.")
    def action_cancel(self, ids):
        cancelled = []
        for invitation_id in _ids(ids):
            self.call_service(
                lambda invitation_id=invitation_id: cancelled.append(
                    invitation_service.cancel_invitation(invitation_id, by=current_user)
                )
            )
        if any(cancelled):
            flash("Invitation cancelled: its link no longer works.", "success")
