"""The fields that tie a journal entry to its task, as the Mesos journald ContainerLogger sets
them and dcos-log filters on (`reference/dcos-logs-api.md`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class TaskFields:
    agent_id: str
    framework_id: str
    executor_id: str
    container_id: str
    identifier: str
    task_id: str | None = None

    def journal_fields(self) -> dict[str, bytes]:
        fields = {
            "AGENT_ID": self.agent_id,
            "FRAMEWORK_ID": self.framework_id,
            "EXECUTOR_ID": self.executor_id,
            "CONTAINER_ID": self.container_id,
            "SYSLOG_IDENTIFIER": self.identifier,
        }
        if self.task_id is not None:
            fields["TASK_ID"] = self.task_id
        # surrogateescape: an argv byte that is not UTF-8 reaches journald unchanged.
        return {name: value.encode("utf-8", "surrogateescape") for name, value in fields.items()}
