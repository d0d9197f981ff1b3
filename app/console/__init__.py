"""The Logway console: a browser view of every log the caller may read, served by the gateway
as static files (no build step) under a strict Content-Security-Policy, over the same API and
route table as every other client (issue 15)."""

from app.console.csrf import CrossOriginProtection
from app.console.routes import console_router

__all__ = ["CrossOriginProtection", "console_router"]
