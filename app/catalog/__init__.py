"""The metadata catalog: SQLAlchemy models and small keyword-only functions taking a ``Session``.

Importing this package registers every model on ``Base.metadata`` (migrations/env.py relies on it).
"""

from app.catalog import acls as acls
from app.catalog import auth as auth
from app.catalog import connect as connect
from app.catalog import producers as producers
from app.catalog import topics as topics
from app.catalog.base import Base
from app.catalog.db import Catalog

__all__ = ["Base", "Catalog"]
