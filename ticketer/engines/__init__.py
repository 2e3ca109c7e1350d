"""Flow engines: how a flow start or an agent reply leaves Ticketer.

rapidpro: a RapidPro-compatible server's API v2 (temba_client); webhook: a signed JSON POST.
The built-in engine writes to Ticketer's own database and lives in ticketer/services/dispatch.py.
"""


class DeliveryError(Exception):
    """A send that didn't go through. `permanent` errors (bad request, bad token) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
