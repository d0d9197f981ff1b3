"""dcos-log's v1 API (reference §1) and the v2 component API (reference §2.2)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import JSONResponse, Response

from app.core.errors import BadRequest
from app.journal.encoders import SSE, encoder_for, negotiate
from app.journal.source import Journal
from app.node.params import v1_query, v2_query, validate_path_value
from app.node.respond import range_response, stream_response

# /v1/fields/{field} answers only for these (dcos-log's allow-list, case-sensitive).
ALLOWED_FIELDS = ("FRAMEWORK_ID", "AGENT_ID", "EXECUTOR_ID", "CONTAINER_ID", "STREAM")

router = APIRouter()


def token_deadline(request: Request) -> float | None:
    """When the caller's credential expires; a stream must not outlive it."""
    identity = getattr(request.state, "identity", None)
    exp = getattr(identity, "exp", None)
    return float(exp) if exp is not None else None


def get_journal(request: Request) -> Journal:
    journal: Journal = request.app.state.journal
    return journal


JournalDep = Annotated[Journal, Depends(get_journal)]
Segment = Annotated[str, Path(pattern=r"^[^/]+$")]


def _task_matches(fid: str, eid: str, cid: str) -> list[tuple[str, str]]:
    return [
        ("CONTAINER_ID", validate_path_value("container_id", cid)),
        ("FRAMEWORK_ID", validate_path_value("framework_id", fid)),
        ("EXECUTOR_ID", validate_path_value("executor_id", eid)),
    ]


async def _v1_range(
    request: Request,
    journal: Journal,
    matches: list[tuple[str, str]] | None = None,
    download: str | None = None,
) -> Response:
    query = v1_query(
        request.query_params, stream=False, last_event_id=None, path_matches=matches or ()
    )
    media = negotiate(request.headers.get("accept"))
    reading = await journal.open(query)
    if download is not None:
        postfix = request.query_params.get("postfix")
        name = "-".join(p for p in (download, postfix) if p)
        return await range_response(reading, encoder_for(media, stream=False), download_name=name)
    return await range_response(reading, encoder_for(media, stream=False))


async def _v1_stream(
    request: Request, journal: Journal, matches: list[tuple[str, str]] | None = None
) -> Response:
    query = v1_query(
        request.query_params,
        stream=True,
        last_event_id=request.headers.get("last-event-id"),
        path_matches=matches or (),
    )
    media = negotiate(request.headers.get("accept"))
    reading = await journal.open(query, follow=True)
    return stream_response(
        reading,
        encoder_for(media, stream=True),
        heartbeat=request.app.state.heartbeat,
        deadline=token_deadline(request),
    )


@router.get("/v1/range/")
async def v1_range(request: Request, journal: JournalDep) -> Response:
    return await _v1_range(request, journal)


@router.get("/v1/range/download")
async def v1_range_download(request: Request, journal: JournalDep) -> Response:
    return await _v1_range(request, journal, download="root-range")


@router.get("/v1/range/framework/{framework_id}/executor/{executor_id}/container/{container_id}")
async def v1_task_range(
    request: Request,
    journal: JournalDep,
    framework_id: Segment,
    executor_id: Segment,
    container_id: Segment,
) -> Response:
    return await _v1_range(request, journal, _task_matches(framework_id, executor_id, container_id))


@router.get(
    "/v1/range/framework/{framework_id}/executor/{executor_id}/container/{container_id}/download"
)
async def v1_task_download(
    request: Request,
    journal: JournalDep,
    framework_id: Segment,
    executor_id: Segment,
    container_id: Segment,
) -> Response:
    matches = _task_matches(framework_id, executor_id, container_id)
    return await _v1_range(request, journal, matches, download=f"task-{container_id}")


@router.get("/v1/stream/")
async def v1_stream(request: Request, journal: JournalDep) -> Response:
    return await _v1_stream(request, journal)


@router.get("/v1/stream/framework/{framework_id}/executor/{executor_id}/container/{container_id}")
async def v1_task_stream(
    request: Request,
    journal: JournalDep,
    framework_id: Segment,
    executor_id: Segment,
    container_id: Segment,
) -> Response:
    matches = _task_matches(framework_id, executor_id, container_id)
    return await _v1_stream(request, journal, matches)


@router.get("/v1/fields/{field}")
async def v1_fields(field: str, journal: JournalDep) -> Response:
    if field not in ALLOWED_FIELDS:
        raise BadRequest(
            f"{field} is not an allowed field (one of {', '.join(ALLOWED_FIELDS)})",
            parameter="field",
        )
    values = await journal.unique(field)
    if not values:
        return Response(status_code=204)  # dcos-log: "Field X not found", body dropped
    return JSONResponse(values, headers={"Access-Control-Allow-Origin": "*"})


async def _v2_component(request: Request, journal: Journal, unit: str | None) -> Response:
    last_event_id = request.headers.get("last-event-id")
    query = v2_query(request.query_params, last_event_id=last_event_id, unit=unit)
    media = negotiate(request.headers.get("accept"))
    # v2 has no stream URL: an event-stream Accept follows, anything else is a range.
    follow = media == SSE
    reading = await journal.open(query, follow=follow)
    encoder = encoder_for(media, stream=follow)
    if follow:
        heartbeat = request.app.state.heartbeat
        return stream_response(
            reading,
            encoder,
            heartbeat=heartbeat,
            deadline=token_deadline(request),
            skip_headers=False,
        )
    return await range_response(reading, encoder, skip_headers=False)


@router.get("/v2/component")
async def v2_component(request: Request, journal: JournalDep) -> Response:
    return await _v2_component(request, journal, None)


@router.get("/v2/component/{unit}")
async def v2_component_unit(request: Request, journal: JournalDep, unit: Segment) -> Response:
    return await _v2_component(request, journal, validate_path_value("unit", unit))


@router.get("/metrics", include_in_schema=False)
async def metrics(journal: JournalDep) -> Response:
    """Prometheus text: live followers and journal handles (the shared tail's included)."""
    body = (
        "# TYPE logway_node_followers gauge\n"
        f"logway_node_followers {journal.tail.followers}\n"
        "# TYPE logway_node_journal_handles gauge\n"
        f"logway_node_journal_handles {journal.pool.open_handles + 1}\n"
    )
    return Response(body, media_type="text/plain; version=0.0.4")
