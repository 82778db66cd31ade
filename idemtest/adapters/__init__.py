"""Adapters: real pipeline frameworks as idemtest checks, each building a Spec and
a load function above the engine (which never imports them)."""
