"""Consumer groups: the coordinator (membership, rebalances, positions, offsets) and its services.

No FastAPI here; ``app/routes/groups.py`` and ``app/routes/events.py`` are the HTTP layer.
"""

from app.groups.coordinator import GroupCoordinator
from app.groups.model import JoinRequest, MemberState, MemberView, OffsetCommit

__all__ = ["GroupCoordinator", "JoinRequest", "MemberState", "MemberView", "OffsetCommit"]
