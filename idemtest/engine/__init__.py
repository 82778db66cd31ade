"""The engine (private): model, generate, execute, interleave, properties,
search, report, diff, clock. It works without pytest and never imports an
adapter or the pytest plugin."""
