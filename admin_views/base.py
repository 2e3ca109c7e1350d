"""The one security base of every admin view: who may enter, and what they may do there."""

from flask import abort, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView
from flask_admin.contrib.sqla import ModelView
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError

from ticketer.extensions import db
from ticketer.roles import Capability


def user_can(capability: Capability | None) -> bool:
    user = current_user._get_current_object()  # once: a page's menu asks a dozen times
    return bool(user.is_authenticated and (capability is None or user.can(capability)))


class SecuredMixin:
    """Entering needs `capability`; anonymous visitors go to sign-in, others get 403."""

    capability: Capability = Capability.VIEW_TICKETS

    def is_accessible(self) -> bool:
        return user_can(self.capability)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)

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
        """None ("Record does not exist") for an id that can't be one, e.g. "1,2", text or 10**30."""
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
