"""The dashboard benchmark on a 600-ticket desk, so that it can't rot: seed, report data, pages, export."""

from bench import dashboard_bench
from bench import seed as seeding
from tests.bench.test_bench_smoke import bench_database  # noqa: F401  (fixture: a database of its own)


def test_dashboard_bench_runs_on_a_small_desk(bench_database):  # noqa: F811
    seeding.seed(bench_database, 600, echo=lambda *_: None)
    app = dashboard_bench.make_app(bench_database)
    try:
        dashboard_bench.add_report_data(app)
        with app.app_context():
            from sqlalchemy import func, select

            from ticketer.extensions import db
            from ticketer.models.reports import TicketDailyCount
            from ticketer.models.supervision import SLABreach

            opened = db.session.scalar(select(func.sum(TicketDailyCount.opened)))
            breaches = db.session.scalar(select(func.count()).select_from(SLABreach))
            db.session.remove()
        assert opened == 600 and breaches == 30
        client = dashboard_bench.sign_in_client(app, seeding.SUPERVISOR_EMAIL)
        figures = dashboard_bench.time_get(client, "/admin/dashboard/?days=365", repeat=2)
        assert 0 < figures["min"] <= figures["median"] <= figures["p95"]
        assert dashboard_bench.time_get(client, "/admin/dashboard/medians?days=365", repeat=1)["min"] > 0
        export = dashboard_bench.time_export(client, "/admin/dashboard/export.csv?folder=all&status=closed")
        assert 0 < export["rows"] < 600
    finally:
        with app.app_context():
            from ticketer.extensions import db

            db.session.remove()
            db.engine.dispose()
