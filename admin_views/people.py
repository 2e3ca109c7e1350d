"""Manage logins (admins only): invite people by email with a role, resend or cancel invitations,
change roles, deactivate and reactivate, and send password reset links."""

from flask import current_app, flash, redirect, url_for
from flask_admin import expose
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, FieldList, Form, FormField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from admin_views.base import SecuredView
from ticketer.clock import utcnow
from ticketer.errors import TicketerError
from ticketer.extensions import db
from ticketer.roles import Capability, Role
from ticketer.services import invitations as invitation_service
from ticketer.services import password_resets as password_reset_service
from ticketer.services import users as user_service
from ticketer.services.links import IssuedLink

ROLE_CHOICES = [(role.value, role.value.title()) for role in Role]
ROLE_OPTIONS = [SelectChoice(value, label) for value, label in ROLE_CHOICES]
INVITE_ROWS = 3
INVITE_ROWS_MAX = 20


class InviteRowForm(Form):
    """One line of the invite form (no CSRF of its own: the outer form carries it)."""

    email = EmailField("Email", validators=[Optional(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_OPTIONS, default=Role.AGENT.value)


class InviteForm(FlaskForm):
    rows = FieldList(FormField(InviteRowForm), min_entries=INVITE_ROWS, max_entries=INVITE_ROWS_MAX)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_OPTIONS)


class ActionForm(FlaskForm):
    """Resend, cancel, deactivate, reactivate, reset: nothing to fill in, but CSRF-protected."""


def _add_error(field, message: str) -> None:
    field.errors = [*field.errors, message]


class PeopleView(SecuredView):
    capability = Capability.MANAGE_PEOPLE

    def _render(self, invite_form: InviteForm | None = None, status: int = 200):
        return (
            self.render(
                "admin/people/index.html",
                invite_form=invite_form or InviteForm(formdata=None),
                invitations=invitation_service.pending_invitations(),
                people=user_service.list_people(),
                role_choices=ROLE_CHOICES,
                action_form=ActionForm(formdata=None),
                now=utcnow(),
                max_rows=INVITE_ROWS_MAX,
            ),
            status,
        )

    def _fail(self, error: TicketerError):
        """A refused change: the page again, with the reason at the top and the error's status."""
        db.session.rollback()
        flash(error.message, "error")
        return self._render(status=error.status)

    @expose("/")
    def index(self):
        return self._render()

    # --- invitations ----------------------------------------------------------------------------

    def _deliver(self, links: list[IssuedLink]) -> None:
        """Send the mails after the invitations are committed, so a mail failure loses nothing."""
        for link in links:
            error = invitation_service.deliver_invitation(link)
            db.session.commit()
            verb = "sent again" if link.resent else "sent"
            if error is None and not current_app.config.get("MAIL_SERVER"):
                flash(f"No mail server is set up: the invitation to {link.email} was printed on the console.", "info")
            elif error is None:
                flash(f"Invitation {verb} to {link.email}.", "success")
            else:
                flash(
                    f"The invitation to {link.email} is saved, but sending the email failed ({error}). "
                    "Use Resend when the mail server works again.",
                    "error",
                )

    @expose("/invite", methods=["POST"])
    def invite(self):
        form = InviteForm()
        if not form.validate_on_submit():
            return self._render(form, 400)
        rows = [entry.form for entry in form.rows if (entry.form.email.data or "").strip()]
        if not rows:
            _add_error(form.rows[0].form.email, "Enter at least one email address.")
            return self._render(form, 400)
        links: list[IssuedLink] = []
        seen: set[str] = set()
        failed = False
        for row in rows:
            address = row.email.data.strip().lower()
            if address in seen:
                _add_error(row.email, "This email is listed twice.")
                failed = True
                continue
            seen.add(address)
            try:
                links.append(invitation_service.invite(row.email.data, row.role.data, by=current_user))
            except TicketerError as error:
                _add_error(row.role if "role" in error.fields else row.email, error.message)
                failed = True
        if failed:
            # All or nothing: fix the marked lines and send again.
            db.session.rollback()
            return self._render(form, 400)
        db.session.commit()
        self._deliver(links)
        return redirect(url_for(".index"))

    @expose("/invitations/<int:invitation_id>/resend", methods=["POST"])
    def resend(self, invitation_id: int):
        if not ActionForm().validate_on_submit():
            return self._render(status=400)
        try:
            link = invitation_service.resend_invitation(invitation_id, by=current_user)
            db.session.commit()
        except TicketerError as error:
            return self._fail(error)
        self._deliver([link])
        return redirect(url_for(".index"))

    @expose("/invitations/<int:invitation_id>/cancel", methods=["POST"])
    def cancel(self, invitation_id: int):
        if not ActionForm().validate_on_submit():
            return self._render(status=400)
        try:
            invitation_service.cancel_invitation(invitation_id, by=current_user)
            db.session.commit()
        except TicketerError as error:
            return self._fail(error)
        flash("Invitation cancelled: its link no longer works.", "success")
        return redirect(url_for(".index"))

    # --- people ---------------------------------------------------------------------------------

    @expose("/<int:user_id>/role", methods=["POST"])
    def change_role(self, user_id: int):
        form = RoleForm()
        if not form.validate_on_submit():
            flash("Pick one of the roles.", "error")
            return self._render(status=400)
        try:
            changed = user_service.change_role(user_id, form.role.data, by=current_user)
            db.session.commit()
        except TicketerError as error:
            return self._fail(error)
        flash("Role changed." if changed else "That is already their role.", "success" if changed else "info")
        if not current_user.can(Capability.MANAGE_PEOPLE):
            return redirect(url_for("tickets.index"))  # an admin who made themselves something else
        return redirect(url_for(".index"))

    @expose("/<int:user_id>/deactivate", methods=["POST"])
    def deactivate(self, user_id: int):
        if not ActionForm().validate_on_submit():
            return self._render(status=400)
        try:
            unassigned = user_service.deactivate(user_id, by=current_user)
            db.session.commit()
        except TicketerError as error:
            return self._fail(error)
        flash(
            f"Deactivated: they are signed out and can't sign in. {unassigned:,} open "
            f"ticket{'s' if unassigned != 1 else ''} unassigned.",
            "success",
        )
        return redirect(url_for(".index"))

    @expose("/<int:user_id>/reactivate", methods=["POST"])
    def reactivate(self, user_id: int):
        if not ActionForm().validate_on_submit():
            return self._render(status=400)
        try:
            user_service.reactivate(user_id, by=current_user)
            db.session.commit()
        except TicketerError as error:
            return self._fail(error)
        flash("Reactivated: they can sign in again with their password.", "success")
        return redirect(url_for(".index"))

    @expose("/<int:user_id>/password-reset", methods=["POST"])
    def password_reset(self, user_id: int):
        if not ActionForm().validate_on_submit():
            return self._render(status=400)
        try:
            link = password_reset_service.send_password_reset(user_id, by=current_user)
            db.session.commit()
        except TicketerError as error:
            return self._fail(error)
        error = password_reset_service.deliver_password_reset(link)
        db.session.commit()
        if error is None and not current_app.config.get("MAIL_SERVER"):
            flash(f"No mail server is set up: the reset link for {link.email} was printed on the console.", "info")
        elif error is None:
            flash(f"Password reset link sent to {link.email}.", "success")
        else:
            flash(f"Sending the password reset link to {link.email} failed ({error}). Try again later.", "error")
        return redirect(url_for(".index"))
