"""ETL maintenance operations missing from the official Python client (ravendb==7.2.7).

``ravendb`` 7.2.7 ships ``RavenEtlConfiguration``, ``Transformation`` and the result classes
``AddEtlOperationResult`` / ``UpdateEtlOperationResult``, but not the operations themselves
(``ravendb/__init__.py`` lists them under "todo"). See shared/spec/client-protocol.md §0 and §7.

These classes fill the gap. They are built on the client's own ``MaintenanceOperation`` /
``RavenCommand`` classes, so they go through the same ``RequestExecutor``, headers, node selection
and error mapping as the built-in operations. They reproduce the wire format of the official C#
client (``Raven.Client/Documents/Operations/ETL/{Add,Update,Reset}EtlOperation.cs``):

* ``AddEtlOperation(cfg)``: ``PUT /databases/{db}/admin/etl``, body = the configuration JSON,
  answer ``{"RaftCommandIndex": n, "TaskId": id}``.
* ``UpdateEtlOperation(task_id, cfg)``: ``PUT /databases/{db}/admin/etl?id={task_id}``, same body
  and answer. The real server implements an update as delete + add, so ``TaskId`` changes.
* ``ResetEtlOperation(configuration_name, transformation_name)``:
  ``RESET /databases/{db}/admin/etl?configurationName=..&transformationName=..`` with body ``{}``.
  The HTTP method really is named ``RESET``. The answer is ignored (void operation).

Use them like the built-in ones: ``store.maintenance.send(AddEtlOperation(cfg))``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional
from urllib.parse import quote

import requests
from ravendb.documents.operations.definitions import MaintenanceOperation, VoidMaintenanceOperation
from ravendb.documents.operations.etl.configuration import EtlConfiguration, RavenEtlConfiguration
from ravendb.documents.operations.etl.etl_operation_results import (
    AddEtlOperationResult,
    UpdateEtlOperationResult,
)
from ravendb.http.raven_command import RavenCommand, VoidRavenCommand
from ravendb.http.server_node import ServerNode
from ravendb.http.topology import RaftCommand
from ravendb.util.util import RaftIdGenerator

__all__ = [
    "AddEtlOperation",
    "UpdateEtlOperation",
    "ResetEtlOperation",
    "etl_configuration_to_json",
]


def etl_configuration_to_json(configuration: EtlConfiguration) -> Dict[str, Any]:
    """The configuration as the C# client serializes it.

    ``EtlConfiguration.to_json`` of the Python client already gives the common fields
    (``EtlType``, ``Name``, ``TaskId``, ``ConnectionStringName``, ``MentorNode``,
    ``PinToMentorNode``, ``AllowEtlOnNonEncryptedChannel``, ``Transforms``, ``Disabled``). The C#
    ``RavenEtlConfiguration.ToJson`` adds ``LoadRequestTimeoutInSec`` (null unless set).
    """
    body = configuration.to_json()
    if isinstance(configuration, RavenEtlConfiguration):
        timeout = getattr(configuration, "load_request_timeout_in_sec", None)
        body.setdefault("LoadRequestTimeoutInSec", timeout)
    return body


def _json_put(url: str, body: Dict[str, Any]) -> requests.Request:
    request = requests.Request("PUT", url)
    request.headers = {"Content-Type": "application/json"}
    request.data = json.dumps(body)
    return request


class AddEtlOperation(MaintenanceOperation[AddEtlOperationResult]):
    """Create an ETL task (C# ``AddEtlOperation<T>``)."""

    def __init__(self, configuration: EtlConfiguration):
        if configuration is None:
            raise ValueError("configuration cannot be None")
        self._configuration = configuration

    def get_command(self, conventions) -> RavenCommand[AddEtlOperationResult]:
        return AddEtlOperation._AddEtlCommand(self._configuration)

    class _AddEtlCommand(RavenCommand[AddEtlOperationResult], RaftCommand):
        def __init__(self, configuration: EtlConfiguration):
            super().__init__(AddEtlOperationResult)
            self._configuration = configuration

        def is_read_request(self) -> bool:
            return False

        def create_request(self, node: ServerNode) -> requests.Request:
            url = f"{node.url}/databases/{node.database}/admin/etl"
            return _json_put(url, etl_configuration_to_json(self._configuration))

        def set_response(self, response: Optional[str], from_cache: bool) -> None:
            if response is None:
                self._throw_invalid_response()
            self.result = AddEtlOperationResult.from_json(json.loads(response))

        def get_raft_unique_request_id(self) -> str:
            return RaftIdGenerator.new_id()


class UpdateEtlOperation(MaintenanceOperation[UpdateEtlOperationResult]):
    """Replace the configuration of ETL task ``task_id`` (C# ``UpdateEtlOperation<T>``)."""

    def __init__(self, task_id: int, configuration: EtlConfiguration):
        if configuration is None:
            raise ValueError("configuration cannot be None")
        self._task_id = task_id
        self._configuration = configuration

    def get_command(self, conventions) -> RavenCommand[UpdateEtlOperationResult]:
        return UpdateEtlOperation._UpdateEtlCommand(self._task_id, self._configuration)

    class _UpdateEtlCommand(RavenCommand[UpdateEtlOperationResult], RaftCommand):
        def __init__(self, task_id: int, configuration: EtlConfiguration):
            super().__init__(UpdateEtlOperationResult)
            self._task_id = task_id
            self._configuration = configuration

        def is_read_request(self) -> bool:
            return False

        def create_request(self, node: ServerNode) -> requests.Request:
            url = f"{node.url}/databases/{node.database}/admin/etl?id={self._task_id}"
            return _json_put(url, etl_configuration_to_json(self._configuration))

        def set_response(self, response: Optional[str], from_cache: bool) -> None:
            if response is None:
                self._throw_invalid_response()
            self.result = UpdateEtlOperationResult.from_json(json.loads(response))

        def get_raft_unique_request_id(self) -> str:
            return RaftIdGenerator.new_id()


class ResetEtlOperation(VoidMaintenanceOperation):
    """Forget the progress of one transformation so that everything is sent again
    (C# ``ResetEtlOperation``)."""

    def __init__(self, configuration_name: str, transformation_name: str):
        if not configuration_name:
            raise ValueError("configuration_name cannot be None or empty")
        if not transformation_name:
            raise ValueError("transformation_name cannot be None or empty")
        self._configuration_name = configuration_name
        self._transformation_name = transformation_name

    def get_command(self, conventions) -> VoidRavenCommand:
        return ResetEtlOperation._ResetEtlCommand(self._configuration_name, self._transformation_name)

    class _ResetEtlCommand(VoidRavenCommand, RaftCommand):
        def __init__(self, configuration_name: str, transformation_name: str):
            super().__init__()
            self._configuration_name = configuration_name
            self._transformation_name = transformation_name

        def create_request(self, node: ServerNode) -> requests.Request:
            url = (
                f"{node.url}/databases/{node.database}/admin/etl"
                f"?configurationName={quote(self._configuration_name, safe='')}"
                f"&transformationName={quote(self._transformation_name, safe='')}"
            )
            request = requests.Request("RESET", url)
            request.headers = {"Content-Type": "application/json"}
            # A string, not a dict: the executor JSON-encodes only truthy non-string bodies, and an
            # empty dict is falsy, so {} would otherwise be sent as no body at all.
            request.data = "{}"
            return request

        def get_raft_unique_request_id(self) -> str:
            return RaftIdGenerator.new_id()
