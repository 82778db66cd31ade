"""The dbt examples: `shop/` is an ordinary dbt project (no idemtest code in it), and
`test_shop.py` checks its incremental models, one declaration each.

    pip install 'idemtest[dbt]'
    pytest --idempotency examples/dbt -rxX
    pytest --idempotency --idem-db postgresql://postgres@127.0.0.1:5432/postgres examples/dbt -rxX
"""
