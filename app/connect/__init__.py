"""The broker's side of ``tidelog connect``: connector configs, task assignment, status and offsets
in the catalog, served by ``app/routes/connect*.py``. Workers (``tidelog.connect``) run the tasks."""

from app.connect.service import ConnectService

__all__ = ["ConnectService"]
