"""Reading the ticket folders: filters, counts and keyset-paginated pages (no OFFSET scans)."""

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Integer, and_, bindparam, case, exists, func, literal, or_, select, union
from sqlalchemy.orm import aliased

from ticketer import ticket_deadlines
from ticketer.extensions import db
from ticketer.models import MAX_ID, Contact, ContactURN, Ticket, TicketStatus, Topic, User
from ticketer.models.folder_counts import NOBODY, TicketFolderCount
from ticketer.roles import ASSIGNABLE_ROLES

FOLDERS = ("mine", "unassigned", "all")
OVERDUE = "overdue"  # open tickets past an SLA deadline, in every folder: a filter more than a folder
STATUSES = (TicketStatus.OPEN.value, TicketStatus.CLOSED.value)
SEARCH_MAX_LENGTH = 200


def run_select(statement, params: dict | None = None):
    """Run a Core SELECT on the session's connection, in its transaction, without the ORM layer:
    about 100 us less a statement (a list page runs five)."""
    db.session.flush()  # what the session's autoflush would do first
    return db.session.connection().execute(statement, params)


@dataclass
class TicketFilter:
    """A folder (mine / unassigned / all), a status, and optional search, topic and assignee."""

    folder: str = "all"
    status: str = TicketStatus.OPEN.value
    query: str = ""
    topic_id: int | None = None
    assignee_id: int | None = None
    overdue: bool = False  # only open tickets past an SLA deadline (the "Overdue" folder)
    # How the query matches, once known: "prefix" (a name or URN starts with it) or "inside".
    search_mode: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.folder not in FOLDERS:
            self.folder = "all"
        if self.status not in STATUSES or self.overdue:
            self.status = TicketStatus.OPEN.value
        if self.overdue:
            self.folder = "all"
        self.query = " ".join((self.query or "").replace("\x00", "").split())[:SEARCH_MAX_LENGTH]

    @classmethod
    def from_args(cls, args, *, default_folder: str = "all") -> "TicketFilter":
        """The filter of a list URL's query string (or of a form's fields, the same names):
        `folder` (mine, unassigned, all or overdue), `status`, `q`, `topic` and `assignee` ids.
        What can't be one of those falls back to the default."""
        folder = args.get("folder") or default_folder
        return cls(
            folder=folder,
            status=args.get("status") or TicketStatus.OPEN.value,
            query=args.get("q") or "",
            topic_id=_id_arg(args, "topic"),
            assignee_id=_id_arg(args, "assignee"),
            overdue=folder == OVERDUE,
        )

    @property
    def folder_name(self) -> str:
        """The folder as its URL names it: mine, unassigned, all or overdue."""
        return OVERDUE if self.overdue else self.folder

    def to_args(self, **changes) -> dict:
        """The query-string arguments `from_args` reads back (empty ones left out), with `changes`
        applied (None removes one): for url_for, the list's links, its forms and the export link."""
        args = {
            "folder": self.folder_name,
            "status": self.status,
            "q": self.query or None,
            "topic": self.topic_id,
            "assignee": self.assignee_id,
            **changes,
        }
        return {name: value for name, value in args.items() if value is not None and value != ""}


def _id_arg(args, name: str) -> int | None:
    value = args.get(name) or ""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_URN_LIKE = re.compile(r"^[a-z][a-z0-9]{1,31}:\S+$")
_PHONE_LIKE = re.compile(r"^\+?[\d\s\-().]{5,}$")
# Above every character: `x >= p AND x < p + _TOP` is "x starts with p" for a binary (C) collation.
_TOP = "\U0010ffff"


def _starts_with(expression, prefix: str):
    """`expression` starts with `prefix`, written so that a B-tree index on `expression` is used.

    SQLite's LIKE can't use an ordinary index, so a range; PostgreSQL uses its pattern_ops index.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return expression.like(f"{escaped}%", escape="\\")
    return and_(expression >= prefix, expression < prefix + _TOP)


def urn_prefixes(query: str) -> list[str]:
    """The URN identities a URN-like ("tel:+5939...") or phone-like ("+593 98...") query starts."""
    text = query.strip()
    if _URN_LIKE.match(text.lower()):
        scheme, _, path = text.partition(":")
        scheme = scheme.lower()
        if scheme == "tel":
            path = re.sub(r"[\s\-().]", "", path)
        return [f"{scheme}:{path}"]
    if _PHONE_LIKE.match(text):
        digits = re.sub(r"\D", "", text)
        return [f"tel:+{digits}", f"tel:{digits}", f"whatsapp:{digits}"]
    return []


def _prefix_matches(query: str):
    """Contacts whose URN or lowercased name starts with the query, found through their indexes."""
    prefixes = urn_prefixes(query)
    if prefixes:
        return select(ContactURN.contact_id).where(or_(*(_starts_with(ContactURN.identity, p) for p in prefixes)))
    by_name = select(Contact.id).where(_starts_with(func.lower(Contact.name), query.lower()))
    by_urn = select(ContactURN.contact_id).where(_starts_with(ContactURN.identity, query.lower()))
    return union(by_name, by_urn)


def _search_mode(query: str) -> str:
    """ "prefix" when some contact's name or URN starts with the query (one index seek), else "inside"."""
    found = run_select(select(literal(1)).where(exists(_prefix_matches(query)))).first()
    return "prefix" if found is not None else "inside"


def _search_condition(query: str, mode: str):
    """Tickets of contacts whose name or URN starts with the query (index seeks, fast at any size).

    When nothing starts with it ("inside"): a URN or number found inside a URN; any other text found
    inside names, URNs and ticket text (that last one reads every ticket of the folder: slow on a
    big desk).
    """
    if mode == "prefix":
        return Ticket.contact_id.in_(_prefix_matches(query))
    prefixes = urn_prefixes(query)
    if prefixes:
        # A URN or a number that no URN starts with: one found inside a URN (a scan of the URNs, not
        # of the tickets), e.g. a national number without its country code.
        inside = prefixes[-1].partition(":")[2] if _PHONE_LIKE.match(query.strip()) else prefixes[0]
        urns = select(ContactURN.contact_id).where(
            func.lower(ContactURN.identity).like(_like_pattern(inside), escape="\\")
        )
        return Ticket.contact_id.in_(urns)
    pattern = _like_pattern(query)
    # Correlated on Ticket only: queries that join Contact themselves (the CSV export) keep their own.
    urn_match = (
        exists()
        .where(ContactURN.contact_id == Ticket.contact_id, func.lower(ContactURN.identity).like(pattern, escape="\\"))
        .correlate(Ticket)
    )
    name_match = (
        exists()
        .where(Contact.id == Ticket.contact_id, func.lower(Contact.name).like(pattern, escape="\\"))
        .correlate(Ticket)
    )
    body_match = func.lower(Ticket.body).like(pattern, escape="\\")
    return or_(name_match, urn_match, body_match)


def filter_conditions(ticket_filter: TicketFilter, user: User, *, with_folder: bool = True) -> list:
    """The WHERE conditions for a folder + status + search + filters, as seen by `user`."""
    conditions = []
    if with_folder:
        conditions.append(Ticket.status == ticket_filter.status)
        if ticket_filter.folder == "mine":
            conditions.append(Ticket.assignee_id == user.id)
        elif ticket_filter.folder == "unassigned":
            conditions.append(Ticket.assignee_id.is_(None))
    if ticket_filter.topic_id is not None:
        conditions.append(Ticket.topic_id == ticket_filter.topic_id)
    if ticket_filter.assignee_id is not None:
        conditions.append(Ticket.assignee_id == ticket_filter.assignee_id)
    if ticket_filter.query:
        if ticket_filter.search_mode is None:
            ticket_filter.search_mode = _search_mode(ticket_filter.query)
        conditions.append(_search_condition(ticket_filter.query, ticket_filter.search_mode))
    if ticket_filter.overdue:
        conditions.append(ticket_deadlines.overdue_condition())
    return conditions


def _folder_count_columns(user_id) -> tuple:
    columns = []
    for folder in FOLDERS:
        for status in STATUSES:
            where = [TicketFolderCount.status == status]
            if folder == "mine":
                where.append(TicketFolderCount.assignee_key == user_id)
            elif folder == "unassigned":
                where.append(TicketFolderCount.assignee_key == NOBODY)
            tickets = func.sum(case((and_(*where), TicketFolderCount.tickets), else_=0))
            columns.append(func.coalesce(tickets, 0).label(f"{folder}_{status}"))
    return tuple(columns)


# The six folder counts as aggregates over the maintained counts (a table of a few rows), to select
# alone or with other figures, given `folder_count_params(user)`; built once: building them costs
# more than running them.
FOLDER_COUNT_COLUMNS = _folder_count_columns(bindparam("folder_counts_user_id", type_=Integer))
_FOLDER_COUNTS = select(*FOLDER_COUNT_COLUMNS)


def folder_count_params(user: User) -> dict:
    return {"folder_counts_user_id": user.id}


def folder_counts_of(row) -> dict[str, dict[str, int]]:
    """{folder: {status: count}} from a row holding `FOLDER_COUNT_COLUMNS`."""
    values = row._mapping
    return {folder: {status: int(values[f"{folder}_{status}"]) for status in STATUSES} for folder in FOLDERS}


def folder_counts(user: User) -> dict[str, dict[str, int]]:
    """{folder: {status: count}} for Mine, Unassigned and All, from the maintained counts (one small query)."""
    return folder_counts_of(run_select(_FOLDER_COUNTS, folder_count_params(user)).one())


def matching_count_query(ticket_filter: TicketFilter, user: User):
    """A scalar subquery: how many tickets the filter matches.

    A whole folder reads the maintained counts (a few rows); with a search or filters it counts
    the matches, through the same indexes as the list.
    """
    plain = not (
        ticket_filter.query
        or ticket_filter.topic_id is not None
        or ticket_filter.assignee_id is not None
        or getattr(ticket_filter, "overdue", False)
    )
    if not plain:
        return select(func.count()).select_from(Ticket).where(*filter_conditions(ticket_filter, user)).scalar_subquery()
    query = select(func.coalesce(func.sum(TicketFolderCount.tickets), 0)).where(
        TicketFolderCount.status == ticket_filter.status
    )
    if ticket_filter.folder == "mine":
        query = query.where(TicketFolderCount.assignee_key == user.id)
    elif ticket_filter.folder == "unassigned":
        query = query.where(TicketFolderCount.assignee_key == NOBODY)
    return query.scalar_subquery()


@dataclass(frozen=True)
class Cursor:
    """A position in a folder ordered newest activity first: (last_activity_on, id)."""

    last_activity_on: datetime
    ticket_id: int

    def encode(self) -> str:
        raw = f"{self.last_activity_on.isoformat()}|{self.ticket_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str | None) -> "Cursor | None":
        """None for a missing or malformed cursor, or one no row can be at: a moment that leaves the
        calendar in UTC, an id past 64 bits (the databases can't even compare with those)."""
        if not value or len(value) > 200:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            stamp, _, ticket_id = raw.partition("|")
            moment = datetime.fromisoformat(stamp)
            if moment.tzinfo is None or not ticket_id.isascii() or not ticket_id.isdigit() or len(ticket_id) > 19:
                return None
            if not 0 < int(ticket_id) <= MAX_ID:
                return None
            return cls(moment.astimezone(UTC), int(ticket_id))
        except (ValueError, UnicodeDecodeError, OverflowError):
            return None

    @classmethod
    def of(cls, ticket) -> "Cursor":
        """The position of a Ticket or a list row."""
        return cls(ticket.last_activity_on, ticket.id)


@dataclass
class TicketPage:
    tickets: list  # rows of _ROWS
    next_cursor: str | None = None
    prev_cursor: str | None = None
    extra: dict = field(default_factory=dict)


_Assignee = aliased(User)
# A row of a ticket list: what the page shows (and the keyset and the SLA clock need), as plain rows
# rather than ORM objects (a tenth of the Python work for 50 rows). Outer joins keep the tickets the
# driving table, as in the folder indexes.
_ROWS = (
    select(
        Ticket.id,
        Ticket.uuid,
        Ticket.status,
        Ticket.body,
        Ticket.opened_on,
        Ticket.last_activity_on,
        Ticket.first_reply_on,
        Contact.name.label("contact_name"),
        # The contact's primary URN (its first, as Contact.primary_urn): one index seek per row.
        select(ContactURN.identity)
        .where(ContactURN.contact_id == Ticket.contact_id)
        .order_by(ContactURN.id)
        .limit(1)
        .correlate(Ticket)
        .scalar_subquery()
        .label("contact_urn"),
        Topic.name.label("topic_name"),
        func.coalesce(func.nullif(_Assignee.name, ""), _Assignee.email).label("assignee_name"),
    )
    .select_from(Ticket)
    .outerjoin(Contact, Contact.id == Ticket.contact_id)
    .outerjoin(Topic, Topic.id == Ticket.topic_id)
    .outerjoin(_Assignee, _Assignee.id == Ticket.assignee_id)
)


def list_tickets(
    ticket_filter: TicketFilter,
    user: User,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> TicketPage:
    """One page of a folder, newest activity first, by keyset: `after` pages older, `before` newer.

    One query whatever `limit` is: rows with the fields of `_ROWS` (the ticket, its contact's name
    and primary URN, topic and assignee). A search first tries the contacts its text starts with
    (the usual case); only when that finds nothing does it ask whether any contact starts with it
    at all, and if none does, searches inside names, URNs and text instead: up to two more queries.
    """
    limit = max(1, min(int(limit), 500))
    after_cursor = Cursor.decode(after)
    before_cursor = Cursor.decode(before) if after_cursor is None else None
    keyset = []
    if before_cursor is not None:
        keyset = [
            # The first bound alone is what lets the index seek straight to the cursor.
            Ticket.last_activity_on >= before_cursor.last_activity_on,
            or_(
                Ticket.last_activity_on > before_cursor.last_activity_on,
                and_(
                    Ticket.last_activity_on == before_cursor.last_activity_on,
                    Ticket.id > before_cursor.ticket_id,
                ),
            ),
        ]
        order = (Ticket.last_activity_on.asc(), Ticket.id.asc())
    else:
        if after_cursor is not None:
            keyset = [
                Ticket.last_activity_on <= after_cursor.last_activity_on,
                or_(
                    Ticket.last_activity_on < after_cursor.last_activity_on,
                    and_(
                        Ticket.last_activity_on == after_cursor.last_activity_on,
                        Ticket.id < after_cursor.ticket_id,
                    ),
                ),
            ]
        order = (Ticket.last_activity_on.desc(), Ticket.id.desc())

    def fetch() -> list:
        stmt = _ROWS.where(*filter_conditions(ticket_filter, user), *keyset).order_by(*order).limit(limit + 1)
        return list(run_select(stmt))

    if ticket_filter.query and ticket_filter.search_mode is None:
        # Rows found by prefix prove that something starts with the query: no separate check.
        ticket_filter.search_mode = "prefix"
        rows = fetch()
        if not rows:
            ticket_filter.search_mode = _search_mode(ticket_filter.query)
            if ticket_filter.search_mode != "prefix":
                rows = fetch()
    else:
        rows = fetch()
    more = len(rows) > limit
    rows = rows[:limit]
    if before_cursor is not None:
        rows.reverse()
        has_newer, has_older = more, True
    else:
        has_newer, has_older = after_cursor is not None, more
    page = TicketPage(tickets=rows)
    if rows and has_older:
        page.next_cursor = Cursor.of(rows[-1]).encode()
    if rows and has_newer:
        page.prev_cursor = Cursor.of(rows[0]).encode()
    return page


def assignable_users() -> list[User]:
    """Active people who can take tickets, by name."""
    return list(
        db.session.execute(
            select(User)
            .where(User.active.is_(True), User.role.in_([r.value for r in ASSIGNABLE_ROLES]))
            .order_by(func.lower(User.name), User.email)
        ).scalars()
    )


_ASSIGNEE_CHOICES = (
    select(User.id, func.coalesce(func.nullif(User.name, ""), User.email).label("display_name"), User.role)
    .where(User.active.is_(True), User.role.in_([r.value for r in ASSIGNABLE_ROLES]))
    .order_by(func.lower(User.name), User.email)
)
_TOPIC_CHOICES = select(Topic.id, Topic.name).order_by(Topic.name)


def assignee_choices() -> list:
    """`assignable_users()` as light rows (id, display_name, role), for the list page's filters."""
    return list(run_select(_ASSIGNEE_CHOICES))


def topic_choices() -> list:
    """Every topic as a light row (id, name), by name."""
    return list(run_select(_TOPIC_CHOICES))
