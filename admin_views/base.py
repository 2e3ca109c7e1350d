"""The one security base of every admin view (who may enter, what they may do there, where they may be
sent back to), and the service-calling base of the CRUD pages."""

import re

from flask import abort, flash, get_template_attribute, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView
from flask_admin.contrib.sqla import ModelView
from flask_admin.model.template import BaseListRowAction
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import CombinedMultiDict, ImmutableMultiDict, MultiDict

from ticketer.errors import TicketerError
from ticketer.extensions import db
from ticketer.models import MAX_ID
from ticketer.roles import Capability

# Whitespace, control characters and backslashes: browsers drop tabs and newlines and read "\" as "/".
_NOT_IN_A_LOCAL_PATH = re.compile(r"[\x00-\x20\x7f\\]")


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None.

    The one check of every redirect target a page takes from the request: Flask-Admin's `url`, the
    sign-in page's `next`, the ticket page's `back`. Browsers read `http:/x`, `http:x`, `//x` and `\\\\x`
    as other sites, so only "/" followed by anything but a second slash passes, with no whitespace,
    control character or backslash anywhere.
    """
    if not target or not target.startswith("/") or target.startswith("//") or _NOT_IN_A_LOCAL_PATH.search(target):
        return None
    return target


def show_error(error: TicketerError, form=None, aliases: dict[str, str] | None = None) -> None:
    """A domain error by its field(s) when `form` has them (`aliases` maps a service's field name to the
    form's), else as a flash at the top of the page."""
    shown = False
    for name, message in error.fields.items():
        name = (aliases or {}).get(name, name)
        field = getattr(form, name, None) if form is not None else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, message]
            shown = True
    if not shown:
        flash(error.message, "error")


def _drop_off_site_return_address() -> None:
    """Remove every off-site `url` from this request's arguments and form, for Flask-Admin to read.

    Flask-Admin reads `request.values` in a module-level function no view can override; werkzeug's
    request attributes are cached properties that may be set, which is what this does.
    """

    def kept(values: MultiDict) -> ImmutableMultiDict:
        return ImmutableMultiDict(
            [(key, value) for key, value in values.items(multi=True) if key != "url" or local_path(value)]
        )

    request.args = kept(request.args)
    request.form = kept(request.form)
    request.values = CombinedMultiDict([request.args, request.form])


def post_button(url: str, label: str, fields: dict | None = None, **options) -> str:
    """The `post_button` macro of templates/admin/_post_button.html, for buttons built in Python
    (list row actions)."""
    return get_template_attribute("admin/_post_button.html", "post_button")(url, label, fields or {}, **options)


class PostRowAction(BaseListRowAction):
    """A row's button that posts one of the view's @actions for that row alone (CSRF included), shown
    only where `show(row)` says the action applies."""

    def __init__(self, action: str, label: str, show=None, class_: str = "btn btn-sm btn-outline-primary"):
        super().__init__(title=label)
        self.action, self.show, self.class_ = action, show, class_

    def render(self, context, row_id, row):
        if self.show is not None and not self.show(row):
            return ""
        view = context.resolve("admin_view")
        fields = {"action": self.action, "rowid": row_id, "url": context.resolve("return_url")}
        return post_button(view.get_url(".action_view"), self.title, fields, class_=f"{self.class_} {self.action}")


def user_can(capability: Capability | None) -> bool:
    user = current_user._get_current_object()  # once: a page's menu asks a dozen times
    return bool(user.is_authenticated and (capability is None or user.can(capability)))


class SecuredMixin:
    """Entering needs `capability`; anonymous visitors go to sign-in, others get 403.

    A return address (Flask-Admin's `url`, in the query string or the form) that is not a path on this
    site is dropped before the view runs, so the page goes back to its list instead: Flask-Admin's own
    check (`get_redirect_target`) lets `http:/evil.example` through.
    """

    capability: Capability = Capability.VIEW_TICKETS

    def is_accessible(self) -> bool:
        return user_can(self.capability)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)

    def _handle_view(self, name, **kwargs):
        """Flask-Admin's documented hook that runs before every view of this class."""
        response = super()._handle_view(name, **kwargs)
        if response is None and any(url and not local_path(url) for url in request.values.getlist("url")):
            _drop_off_site_return_address()
        return response

    def get_url(self, endpoint: str, **kwargs) -> str:
        """Flask-Admin's layout links a dozen static files: their URLs don't change, so built once."""
        if not endpoint.endswith(".static"):
            return super().get_url(endpoint, **kwargs)
        key = (endpoint, request.script_root, tuple(sorted(kwargs.items())))
        urls = self.__dict__.setdefault("_static_urls", {})
        if key not in urls:
            urls[key] = super().get_url(endpoint, **kwargs)
        return urls[key]


class SecuredView(SecuredMixin, BaseView):
    """A custom admin page (BaseView with @expose routes)."""


class SecuredIndexView(SecuredMixin, AdminIndexView):
    pass


class SecuredModelView(SecuredMixin, ModelView):
    """A Flask-Admin model view whose create/edit/delete rights follow the user's role.

    `write_capability` is needed to create, edit or delete; `allow_*` say which of those the view
    offers at all. Reading needs `capability`.
    """

    form_base_class = FlaskForm  # CSRF token from CSRFProtect's secret; never SecureForm as well
    write_capability: Capability | None = None
    allow_create = True
    allow_edit = True
    allow_delete = False
    page_size = 50

    def _may_write(self) -> bool:
        return self.write_capability is not None and user_can(self.write_capability)

    @property
    def can_create(self) -> bool:
        return self.allow_create and self._may_write()

    @property
    def can_edit(self) -> bool:
        return self.allow_edit and self._may_write()

    @property
    def can_delete(self) -> bool:
        return self.allow_delete and self._may_write()

    def get_one(self, id):
        """None ("Record does not exist") for an id that can't be one, e.g. "1,2" or text; 404 for a
        number past what an id column holds (2**63 and up), as for an <int:...> in a path."""
        if isinstance(id, str) and id.isascii() and id.isdigit() and int(id) > MAX_ID:
            abort(404)
        try:
            return super().get_one(id)
        except (SQLAlchemyError, ValueError, OverflowError):
            db.session.rollback()
            return None

    def _get_list_extra_args(self):
        """The list's query string, made harmless: a page number the database can OFFSET by, and no
        NUL in the search or filters (PostgreSQL refuses it). A hand-edited URL gets a page, not a 500."""
        args = super()._get_list_extra_args()
        if not 0 <= (args.page or 0) <= 1_000_000:
            args.page = 0
        if args.search:
            args.search = args.search.replace("\x00", "")[:200] or None
        if args.filters:
            args.filters = [(i, name, str(value).replace("\x00", "")) for i, name, value in args.filters]
        return args


class ServiceModelView(SecuredModelView):
    """A CRUD page whose writes go through ticketer.services, never through the form onto the model.

    A subclass implements `create_with_service(form)` (returns the new object), `update_with_service(form,
    model)` and, when it allows deleting, `delete_with_service(model)`. Each runs in the request's
    transaction and is committed here; a TicketerError rolls back and lands by its field on the form
    (or in a flash) in one place, `handle_view_exception`. The list never counts its rows (Flask-Admin's
    simple pager), and its @actions are buttons (templates/admin/service_list.html).
    """

    simple_list_pager = True
    list_template = "admin/service_list.html"
    error_fields: dict[str, str] = {}  # a service's field name -> the form's, where they differ
    can_export = False
    can_view_details = False

    def create_with_service(self, form):
        raise NotImplementedError

    def update_with_service(self, form, model) -> None:
        raise NotImplementedError

    def delete_with_service(self, model) -> None:
        raise NotImplementedError

    def handle_view_exception(self, exc: Exception, form=None) -> bool:
        """A domain error: roll back and show it (by its field when `form` has one); others as Flask-Admin."""
        if isinstance(exc, TicketerError):
            db.session.rollback()
            show_error(exc, form, self.error_fields)
            return True
        return super().handle_view_exception(exc)

    def call_service(self, call, form=None) -> tuple[bool, object]:
        """Run one service call and commit it: (True, its result), or (False, None) when it raised a
        TicketerError, which is rolled back and shown by handle_view_exception."""
        try:
            result = call()
            db.session.commit()
        except TicketerError as error:
            self.handle_view_exception(error, form)
            return False, None
        return True, result

    def create_model(self, form):
        ok, model = self.call_service(lambda: self.create_with_service(form), form)
        if ok:
            self.after_model_change(form, model, True)
        return model if ok else False

    def update_model(self, form, model) -> bool:
        ok, _ = self.call_service(lambda: self.update_with_service(form, model), form)
        if ok:
            self.after_model_change(form, model, False)
        return ok

    def delete_model(self, model) -> bool:
        ok, _ = self.call_service(lambda: self.delete_with_service(model))
        if ok:
            self.after_model_delete(model)
        return ok
