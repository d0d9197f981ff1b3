"""A forwarder's configuration: pipelines (source words, window, sinks, state file), the
gateway and the identity, from a TOML file or from one command line.

    url = "https://gateway.example"          # else --url, LOGWAY_URL, `logway login`'s
    service_account = "forwarder"            # with private_key; else LOGWAY_TOKEN / login's
    private_key = "/etc/logway/forwarder.pem"
    metrics = "127.0.0.1:9473"               # optional Prometheus endpoint

    [[pipeline]]
    name = "prod-to-elk"
    source = "app /prod"                     # the words of `logway logs`, or `cluster`
    filter = ["STREAM:STDOUT"]
    since = "1h"                             # the first start only
    state = "/var/lib/logway-forward/prod-to-elk.json"
    to = ["redis://127.0.0.1:6379/0?key=logstash"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cli.http import EXIT_USAGE, CliError
from app.cli.logs_source import (
    SourceArgs,
    Window,
    kind_named,
    parse_filter,
    parse_since,
    unit_name,
)
from app.forward.source import Feed, Gateway, single_feed

CLUSTER = "cluster"
DEFAULT_BATCH = 1000
MAX_BATCH = 50_000


def usage(message: str) -> CliError:
    return CliError(message, EXIT_USAGE)


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    words: tuple[str, ...]  # e.g. ("app", "/prod"), ("cluster",)
    window: Window
    unit: str | None
    state: Path
    sinks: tuple[str, ...]
    batch_size: int = DEFAULT_BATCH

    @property
    def label(self) -> str:
        """What the state file records, so that it is never resumed for another source."""
        text = " ".join(self.words)
        extra = [f"unit {self.unit}"] if self.unit else []
        extra += [f"filter {name}:{value}" for name, value in self.window.filters]
        return ", ".join([text, *extra])

    def feeds(self) -> tuple[bool, Any]:
        """(whether to look for new feeds, a coroutine function giving the feeds)."""
        if self.words[0] == CLUSTER:
            if len(self.words) != 1 or self.unit is not None:
                raise usage("cluster takes no arguments and no --unit")
            window = self.window

            async def cluster(gateway: Gateway) -> Sequence[Feed]:
                return await gateway.cluster_feeds(window)

            return True, cluster
        source = build_source(self.words, self.unit)
        feeds = single_feed(source, self.window)

        async def one(gateway: Gateway) -> Sequence[Feed]:
            return feeds

        return False, one


def build_source(words: Sequence[str], unit: str | None) -> Any:
    """`logway logs`'s own source kinds, from words as on its command line."""
    if not words:
        raise usage("no source: expected agent ID, master, leader, task NAME, role, app or cluster")
    kind = kind_named(words[0])
    args = list(words[1:])
    values: dict[str, str] = {}
    for positional in kind.positionals:
        if args:
            value = args.pop(0)
            if positional.choices is not None and value not in positional.choices:
                raise usage(f"{kind.name}: {value!r}; expected one of {positional.choices}")
            values[positional.name] = value
        elif positional.default is not None:
            values[positional.name] = positional.default
        else:
            raise usage(f"{kind.name} needs {positional.name.upper()}")
    if args:
        raise usage(f"{kind.name}: unexpected {' '.join(args)!r}")
    return kind.build(SourceArgs(values, unit))


def window(since: str | None, filters: Sequence[str]) -> Window:
    """From the head of what the source holds (or `since`), every entry: `lines=None`."""
    return Window(
        lines=None,
        since=parse_since(since) if since is not None else None,
        filters=tuple(parse_filter(raw) for raw in filters),
    )


def spec(
    *,
    name: str,
    words: Sequence[str],
    since: str | None,
    filters: Sequence[str],
    unit: str | None,
    state: str | Path | None,
    sinks: Sequence[str],
    batch_size: int = DEFAULT_BATCH,
) -> PipelineSpec:
    if state is None:
        raise usage(f"pipeline {name}: needs a state file (--state PATH, `state =`)")
    if not sinks:
        raise usage(f"pipeline {name}: needs at least one sink (--to URL, `to = [...]`)")
    if not 1 <= batch_size <= MAX_BATCH:
        raise usage(f"pipeline {name}: batch {batch_size}; expected 1 to {MAX_BATCH}")
    built = PipelineSpec(
        name=name,
        words=tuple(words),
        window=window(since, filters),
        unit=unit_name(unit) if unit is not None else None,
        state=Path(state),
        sinks=tuple(sinks),
        batch_size=batch_size,
    )
    built.feeds()  # checks the source words now: a usage error before anything starts
    return built


@dataclass(frozen=True)
class Config:
    pipelines: tuple[PipelineSpec, ...]
    url: str | None = None
    service_account: str | None = None
    private_key: Path | None = None
    metrics: str | None = None


def _strings(value: object, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise usage(f"{what}: expected a string or a list of strings")


def load(path: Path) -> Config:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise usage(f"--config {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise usage(f"--config {path}: {exc}") from exc
    return from_mapping(data, where=str(path))


def from_mapping(data: Mapping[str, Any], *, where: str) -> Config:
    known = {"url", "service_account", "private_key", "metrics", "pipeline"}
    if unknown := sorted(set(data) - known):
        raise usage(f"{where}: unknown setting(s) {', '.join(unknown)}")
    raw_pipelines = data.get("pipeline")
    if not isinstance(raw_pipelines, list) or not raw_pipelines:
        raise usage(f"{where}: no [[pipeline]]")
    pipelines = []
    names: set[str] = set()
    for n, raw in enumerate(raw_pipelines):
        if not isinstance(raw, dict):
            raise usage(f"{where}: pipeline {n + 1} is not a table")
        name = str(raw.get("name", f"pipeline-{n + 1}"))
        allowed = {"name", "source", "filter", "since", "unit", "state", "to", "batch"}
        if unknown := sorted(set(raw) - allowed):
            raise usage(f"{where}: pipeline {name}: unknown setting(s) {', '.join(unknown)}")
        if name in names:
            raise usage(f"{where}: two pipelines named {name}")
        names.add(name)
        source = raw.get("source")
        words = source.split() if isinstance(source, str) else _strings(source, "source")
        batch = raw.get("batch", DEFAULT_BATCH)
        if not isinstance(batch, int):
            raise usage(f"{where}: pipeline {name}: batch must be a number")
        pipelines.append(
            spec(
                name=name,
                words=words,
                since=raw.get("since"),
                filters=_strings(raw.get("filter", []), f"pipeline {name}: filter"),
                unit=raw.get("unit"),
                state=raw.get("state"),
                sinks=_strings(raw.get("to", []), f"pipeline {name}: to"),
                batch_size=batch,
            )
        )
    states = [p.state.resolve() for p in pipelines]
    if len(set(states)) != len(states):
        raise usage(f"{where}: two pipelines share a state file")
    key = data.get("private_key")
    return Config(
        pipelines=tuple(pipelines),
        url=data.get("url"),
        service_account=data.get("service_account"),
        private_key=Path(key) if key else None,
        metrics=data.get("metrics"),
    )
