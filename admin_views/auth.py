"""Sign in and out (Flask-Login), accepting an invitation, changing one's password, and reset links."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from admin_views.base import local_path, show_error
from ticketer.errors import LinkUnusable, NotFound, TicketerError, TooManyAttempts
from ticketer.extensions import db, login_manager
from ticketer.models import User
from ticketer.services import invitations as invitation_service
from ticketer.services import password_resets as password_reset_service
from ticketer.services import users as user_service

bp = Blueprint("auth", __name__)
REMEMBER_COOKIE = "remember_token"  # Flask-Login's default REMEMBER_COOKIE_NAME

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The cookies hold "<id>:<session token>:<sign-in token>": signing out, or a rotated session
    token (password change, deactivation), ends them."""
    return user_service.signed_in_user(user_id)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in")


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = local_path(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = user_service.authenticate(form.email.data, form.password.data, address=request.remote_addr)
        except TooManyAttempts as error:
            db.session.rollback()
            return render_template("auth/login.html", form=form, limit_error=error.message), error.status
        if user is not None:
            user_service.start_sign_in(user, remember=form.remember.data)
        db.session.commit()  # the failed attempt counts, or the success clears the account's count
        if user is None:
            form.password.errors.append("That email and password don't match an active account.")
        else:
            login_user(user, remember=form.remember.data)
            return redirect(next_url or url_for("admin.index"))
    return render_template("auth/login.html", form=form), (200 if not form.errors else 400)


@bp.post("/logout")
@login_required
def logout():
    """Ends this sign-in on the server: its session and remember cookies stop working, even copies.
    The person's sign-ins on other devices go on."""
    user_service.end_sign_in(current_user)
    db.session.commit()
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


# --- invitations, passwords ----------------------------------------------------------------------

PASSWORD_HELP = f"At least {user_service.PASSWORD_MIN_LENGTH} characters, not your email address."


class AcceptInvitationForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired("Enter your name."), Length(max=128)])
    password = PasswordField(
        "Choose a password",
        validators=[DataRequired("Choose a password."), Length(max=1024)],
        description=PASSWORD_HELP,
    )
    confirm = PasswordField("Repeat the password", validators=[EqualTo("password", "The two passwords don't match.")])


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        "New password", validators=[DataRequired("Choose a password."), Length(max=1024)], description=PASSWORD_HELP
    )
    confirm = PasswordField(
        "Repeat the new password", validators=[EqualTo("password", "The two passwords don't match.")]
    )


class ChangePasswordForm(NewPasswordForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password."), Length(max=1024)]
    )


def _link_problem(error: TicketerError):
    return render_template("auth/link_problem.html", message=error.message), error.status


def _use_link_and_sign_in(form, use_link, welcome):
    """Use an invitation or reset link (`use_link()` returns its person), commit, and sign them in.

    Returns the response to send, or None to show the form again with the error by its field.
    """
    try:
        if current_user.is_authenticated:
            user_service.end_sign_in(current_user)  # whoever was signed in here makes way
        user = use_link()
        user_service.start_sign_in(user)
        db.session.commit()
    except (NotFound, LinkUnusable) as error:
        db.session.rollback()
        return _link_problem(error)
    except TicketerError as error:
        db.session.rollback()
        show_error(error, form)
        return None
    if current_user.is_authenticated:
        logout_user()
    login_user(user)
    flash(welcome(user), "success")
    return redirect(url_for("tickets.index"))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    """Anyone holding a pending invitation link sets a name and password here, and is signed in."""
    try:
        invitation = invitation_service.find_invitation(token)
    except (NotFound, LinkUnusable) as error:
        return _link_problem(error)
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        response = _use_link_and_sign_in(
            form,
            lambda: invitation_service.accept_invitation(token, name=form.name.data, password=form.password.data),
            lambda user: f"Welcome to Ticketer, {user.display_name}.",
        )
        if response is not None:
            return response
    status = 400 if form.errors or request.method == "POST" else 200
    return render_template("auth/accept_invitation.html", form=form, invitation=invitation), status


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Set a new password through a single-use link an admin sent; signs the person in."""
    try:
        reset = password_reset_service.find_password_reset(token)
    except (NotFound, LinkUnusable) as error:
        return _link_problem(error)
    email = reset.user.email
    form = NewPasswordForm()
    if form.validate_on_submit():
        response = _use_link_and_sign_in(
            form,
            lambda: password_reset_service.reset_password(token, form.password.data),
            lambda user: "Your new password is set.",
        )
        if response is not None:
            return response
    status = 400 if form.errors or request.method == "POST" else 200
    return render_template("auth/reset_password.html", form=form, email=email), status


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password; other sessions end, this one continues."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = user_service.change_password(
                current_user.id, form.current_password.data, form.password.data, address=request.remote_addr
            )
            db.session.commit()
        except TooManyAttempts as error:
            db.session.rollback()
            flash(error.message, "error")
            return render_template("auth/change_password.html", form=form), error.status
        except TicketerError as error:
            if "current_password" in error.fields:
                db.session.commit()  # keep the failed attempt counted; nothing else changed
            else:
                db.session.rollback()
            show_error(error, form)
        else:
            # The session token changed: renew this browser's cookies (its remember cookie too, if it has one).
            login_user(user, remember=REMEMBER_COOKIE in request.cookies)
            flash("Your password is changed. Other sessions were signed out.", "success")
            return redirect(url_for("tickets.index"))
    status = 400 if form.errors or request.method == "POST" else 200
    return render_template("auth/change_password.html", form=form), status
