"""The Dagster examples: `pipelines/orders.py` is ordinary Dagster code (no idemtest
import in it), and `test_orders.py` checks its assets, one declaration each.

    pip install 'idemtest[dagster]'
    pytest --idempotency examples/dagster -rxX
"""
