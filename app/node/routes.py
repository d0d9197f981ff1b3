"""dcos-log's v1 API (reference §1), the v2 component API (reference §2.2) and the v2 task
file routes (reference §2.3), served from the task's journal lines."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import JSONResponse, Response

from app.core.errors import BadRequest, NotFound
from app.journal.encoders import SSE, TEXT, Encoder, encoder_for, file_encoder_for, negotiate
from app.journal.params import v1_query, v2_query, validate_path_value
from app.journal.query import Query
from app.journal.search import SearchEncoder
from app.journal.source import Journal
from app.node.deps import JournalDep, node_services
from app.node.respond import count_response, range_response, stream_response

# /v1/fields/{field} answers only for these (dcos-log's allow-list, case-sensitive).
ALLOWED_FIELDS = ("FRAMEWORK_ID", "AGENT_ID", "EXECUTOR_ID", "CONTAINER_ID", "STREAM")
# The sandbox files a task's journal holds, as the shipper tags its lines (app/shipper).
TASK_FILES = {"stdout": "STDOUT", "stderr": "STDERR"}
_V2_RUN = "/v2/task/frameworks/{framework_id}/executors/{executor_id}/runs/{container_id}"

router = APIRouter()


def token_deadline(request: Request) -> float | None:
    """When the caller's credential expires; a stream must not outlive it."""
    identity = getattr(request.state, "identity", None)
    exp = getattr(identity, "exp", None)
    return float(exp) if exp is not None else None


Segment = Annotated[str, Path(pattern=r"^[^/]+$")]


def _task_matches(fid: str, eid: str, cid: str) -> list[tuple[str, str]]:
    return [
        ("CONTAINER_ID", validate_path_value("container_id", cid)),
        ("FRAMEWORK_ID", validate_path_value("framework_id", fid)),
        ("EXECUTOR_ID", validate_path_value("executor_id", eid)),
    ]


async def _task_path(
    framework_id: Segment, executor_id: Segment, container_id: Segment
) -> list[tuple[str, str]]:
    return _task_matches(framework_id, executor_id, container_id)


# The task a v1 task route's path names, as journal matches.
TaskMatches = Annotated[list[tuple[str, str]], Depends(_task_path)]


def searching(query: Query, encoder: Encoder) -> Encoder:
    """With grep=: entries marked as match or context (`--` between groups in text)."""
    if query.search is None:
        return encoder
    return SearchEncoder(encoder, text=encoder.media_type == TEXT)


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
    encoder = searching(query, encoder_for(media, stream=False))
    reading = await journal.open(query)
    if download is not None:
        postfix = request.query_params.get("postfix")
        name = "-".join(p for p in (download, postfix) if p)
        return await range_response(reading, encoder, download_name=name, request=request)
    return await range_response(reading, encoder, request=request)


async def _v1_count(
    request: Request, journal: Journal, matches: list[tuple[str, str]] | None = None
) -> Response:
    """`{"entries": N}`: how many entries (with grep=, matches) the range would send."""
    query = v1_query(
        request.query_params, stream=False, last_event_id=None, path_matches=matches or ()
    )
    if query.search is not None and query.search.context:
        query = replace(query, search=replace(query.search, context=0))
    return await count_response(await journal.open(query), request)


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
    encoder = searching(query, encoder_for(media, stream=True))
    reading = await journal.open(query, follow=True)
    return stream_response(
        reading,
        encoder,
        heartbeat=node_services(request).heartbeat,
        deadline=token_deadline(request),
    )


@router.get("/v1/range/")
async def v1_range(request: Request, journal: JournalDep) -> Response:
    return await _v1_range(request, journal)


@router.get("/v1/count/")
async def v1_count(request: Request, journal: JournalDep) -> Response:
    return await _v1_count(request, journal)


@router.get("/v1/count/framework/{framework_id}/executor/{executor_id}/container/{container_id}")
async def v1_task_count(request: Request, journal: JournalDep, task: TaskMatches) -> Response:
    return await _v1_count(request, journal, task)


@router.get("/v1/range/download")
async def v1_range_download(request: Request, journal: JournalDep) -> Response:
    return await _v1_range(request, journal, download="root-range")


@router.get("/v1/range/framework/{framework_id}/executor/{executor_id}/container/{container_id}")
async def v1_task_range(request: Request, journal: JournalDep, task: TaskMatches) -> Response:
    return await _v1_range(request, journal, task)


@router.get(
    "/v1/range/framework/{framework_id}/executor/{executor_id}/container/{container_id}/download"
)
async def v1_task_download(
    request: Request, journal: JournalDep, task: TaskMatches, container_id: Segment
) -> Response:
    return await _v1_range(request, journal, task, download=f"task-{container_id}")


@router.get("/v1/stream/")
async def v1_stream(request: Request, journal: JournalDep) -> Response:
    return await _v1_stream(request, journal)


@router.get("/v1/stream/framework/{framework_id}/executor/{executor_id}/container/{container_id}")
async def v1_task_stream(request: Request, journal: JournalDep, task: TaskMatches) -> Response:
    return await _v1_stream(request, journal, task)


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


async def _v2_read(request: Request, journal: Journal, query: Query, encoder: Encoder) -> Response:
    # v2 has no stream URL: an event-stream Accept follows, anything else is a range.
    follow = encoder.media_type == SSE
    encoder = searching(query, encoder)
    reading = await journal.open(query, follow=follow)
    if follow:
        heartbeat = node_services(request).heartbeat
        return stream_response(
            reading,
            encoder,
            heartbeat=heartbeat,
            deadline=token_deadline(request),
            skip_headers=False,
        )
    return await range_response(reading, encoder, skip_headers=False, request=request)


async def _v2_component(request: Request, journal: Journal, unit: str | None) -> Response:
    last_event_id = request.headers.get("last-event-id")
    query = v2_query(request.query_params, last_event_id=last_event_id, unit=unit)
    media = negotiate(request.headers.get("accept"))
    return await _v2_read(request, journal, query, encoder_for(media, stream=media == SSE))


@router.get("/v2/component")
async def v2_component(request: Request, journal: JournalDep) -> Response:
    return await _v2_component(request, journal, None)


@router.get("/v2/component/{unit}")
async def v2_component_unit(request: Request, journal: JournalDep, unit: Segment) -> Response:
    return await _v2_component(request, journal, validate_path_value("unit", unit))


def _stream_of(file: str) -> tuple[str, str]:
    stream = TASK_FILES.get(file)
    if stream is None:
        raise _no_such_file(file)
    return ("STREAM", stream)


def _no_such_file(file: str) -> NotFound:
    return NotFound(
        f"No file {file!r} here: a task's journal has only `stdout` and `stderr` "
        "(no other sandbox files, browse or download)"
    )


async def _v2_task(
    request: Request, journal: Journal, matches: list[tuple[str, str]], file: str
) -> Response:
    last_event_id = request.headers.get("last-event-id")
    query = v2_query(request.query_params, last_event_id=last_event_id, path_matches=matches)
    media = negotiate(request.headers.get("accept"))
    return await _v2_read(request, journal, query, file_encoder_for(media, file=file))


@router.get(_V2_RUN + "/{file}")
async def v2_task_file(
    request: Request,
    journal: JournalDep,
    framework_id: Segment,
    executor_id: Segment,
    container_id: Segment,
    file: Segment,
) -> Response:
    """What the task wrote to `stdout` or `stderr`, found by its container (a nested one
    joined with dots, as on the v1 task routes)."""
    matches = _task_matches(framework_id, executor_id, container_id)
    return await _v2_task(request, journal, [*matches, _stream_of(file)], file)


@router.get(_V2_RUN + "/tasks/{task_id}/{file}")
async def v2_pod_task_file(
    request: Request,
    journal: JournalDep,
    framework_id: Segment,
    executor_id: Segment,
    container_id: Segment,
    task_id: Segment,
    file: Segment,
) -> Response:
    """A pod's task: `runs/{container_id}` names the pod's (outermost) container.

    The task's own CONTAINER_ID is `<container_id>.<its container>` and journald matches
    only whole values, so the task is found by TASK_ID (set by the shipper when it is given
    one) within the framework and executor; the run's container is validated, not matched.
    """
    validate_path_value("container_id", container_id)
    matches = [
        ("FRAMEWORK_ID", validate_path_value("framework_id", framework_id)),
        ("EXECUTOR_ID", validate_path_value("executor_id", executor_id)),
        ("TASK_ID", validate_path_value("task_id", task_id)),
        _stream_of(file),
    ]
    return await _v2_task(request, journal, matches, file)


@router.get(_V2_RUN + "/{rest:path}", include_in_schema=False)
async def v2_task_other(
    framework_id: Segment, executor_id: Segment, container_id: Segment, rest: str
) -> Response:
    """dcos-log's `files/browse`, `<file>/download` and the like: not in a journal."""
    _task_matches(framework_id, executor_id, container_id)
    raise _no_such_file(rest)


@router.get("/metrics")
async def metrics(journal: JournalDep) -> Response:
    """Prometheus text: live followers, journal handles (the shared tail's included), and
    grep= range reads by the path they took: "index", or why the scan took over."""
    body = (
        "# TYPE logway_node_followers gauge\n"
        f"logway_node_followers {journal.tail.followers}\n"
        "# TYPE logway_node_journal_handles gauge\n"
        f"logway_node_journal_handles {journal.pool.open_handles + 1}\n"
        "# TYPE logway_node_index_searches_total counter\n"
        + "".join(
            f'logway_node_index_searches_total{{path="{path}"}} {n}\n'
            for path, n in sorted(journal.index_reads.items())
        )
    )
    return Response(body, media_type="text/plain; version=0.0.4")
