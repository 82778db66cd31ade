"""Example pipelines for idemtest: correct ones that pass, buggy ones that are caught.

`pytest --idempotency examples` runs them (buggy ones are strict xfails).
"""
