"""The web console at ``/ui``: static ES modules served by the broker (docs/console.md).

The console is a client like any other: it calls only the public HTTP API from the browser, so its
user gets exactly the authentication, ACLs and quotas of every other client.
"""

from app.ui.routes import router

__all__ = ["router"]
