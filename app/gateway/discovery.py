"""Discovery routes the dcos CLI needs (reference §7): capabilities, cluster metadata and the
Mesos state, served from the gateway's snapshot and filtered to what the caller may see."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
