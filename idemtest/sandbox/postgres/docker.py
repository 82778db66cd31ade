"""DockerPostgresBackend: a throwaway PostgreSQL container (testcontainers) used as a PostgresBackend."""

from __future__ import annotations

import contextlib
from typing import Any

from ..._errors import BackendError
from ..._extras import require
from .dsn import redact
from .pool import PostgresBackend


class DockerPostgresBackend(PostgresBackend):
    """`--idem-db postgres+docker`: a PostgreSQL container (testcontainers) used as PostgresBackend."""

    name = "postgres+docker"

    def __init__(self, image: str = "postgres:16-alpine", **kwargs: Any) -> None:
        require("testcontainers", "docker")
        try:
            mod: Any = require("testcontainers.community.postgres", "docker")
        except BackendError:
            mod = require("testcontainers.postgres", "docker")  # testcontainers < 4.x layout
        container: Any = None
        try:
            container = mod.PostgresContainer(image, driver=None)
            container.start()
        except Exception as e:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.stop()
            raise BackendError(
                f"--idem-db postgres+docker: no Docker engine is reachable ({type(e).__name__}: {redact(str(e).strip())[:200]}); "
                "start Docker, or point idemtest at a PostgreSQL server where it may create databases: "
                "--idem-db postgresql://user@host:5432/postgres"
            ) from None
        self._container = container
        try:
            super().__init__(container.get_connection_url(driver=None), **kwargs)
        except BaseException:
            with contextlib.suppress(Exception):
                container.stop()
            raise

    def describe(self) -> str:
        return f"PostgreSQL container ({super().describe()})"

    def close(self) -> None:
        try:
            super().close()
        finally:
            with contextlib.suppress(Exception):
                self._container.stop()
