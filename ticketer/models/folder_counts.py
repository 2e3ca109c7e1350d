"""Folder counts kept as tickets change, so the folder badges never COUNT(*) a million rows."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ticketer.extensions import db

# assignee_key for tickets nobody is assigned to (a real NULL can't be part of the primary key).
NOBODY = 0


class TicketFolderCount(db.Model):
    """How many tickets one assignee (or nobody, key 0) has in one status: at most ~2 rows per person.

    Kept exactly equal to COUNT(*) of the tickets by ticketer.services.folder_counts, from the ticket
    services' after-change hook in the same transaction; `rebuild_folder_counts()` recomputes it.
    """

    __tablename__ = "ticket_folder_counts"

    assignee_key: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(8), primary_key=True)
    tickets: Mapped[int] = mapped_column(default=0)
