"""The text of a small pytest project of upsert checks on PostgreSQL, written into a temp
folder and run in a subprocess: by tests/postgres/test_cleanup.py (what a run leaves
behind) and bench/exit_delay.py (how long its exit takes). Plain text, no imports."""

HEAD = '''
import idemtest
from idemtest import Source, Spec, Target, hourly

SETUP = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount NUMERIC(12,2), updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT PRIMARY KEY, amount NUMERIC(12,2), updated_at TIMESTAMP);
"""
spec = Spec(
    setup=SETUP,
    sources=[Source("src.orders", columns={"order_id": "BIGINT", "amount": "NUMERIC(12,2)", "updated_at": "TIMESTAMP"},
                    key="order_id", event_time="updated_at", max_rows=4)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=2),
    concurrency="none",
)

def upsert(run):
    run.conn.execute(
        "INSERT INTO analytics.orders SELECT * FROM src.orders ON CONFLICT (order_id) DO UPDATE "
        "SET amount = excluded.amount, updated_at = excluded.updated_at WHERE excluded.updated_at > analytics.orders.updated_at"
    )
    run.conn.commit()
'''

CHECK = '''
@idemtest.check(spec)
def test_{name}(run):
    upsert(run)
'''


def project(*names: str) -> str:
    """The project's module text with one check per name (`test_<name>`)."""
    return HEAD + "".join(CHECK.format(name=n) for n in names)
