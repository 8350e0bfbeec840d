from . import project_pb2 as _project_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PurgeTenantRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class PurgeTenantResponse(_message.Message):
    __slots__ = ("projects", "api_keys", "deleted")
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    projects: int
    api_keys: int
    deleted: _project_pb2.DeletedRows
    def __init__(self, projects: _Optional[int] = ..., api_keys: _Optional[int] = ..., deleted: _Optional[_Union[_project_pb2.DeletedRows, _Mapping]] = ...) -> None: ...

class RunRetentionRequest(_message.Message):
    __slots__ = ("dry_run", "project_id", "tenant")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    project_id: str
    tenant: str
    def __init__(self, dry_run: bool = ..., project_id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class RunRetentionResponse(_message.Message):
    __slots__ = ("dry_run", "archived_turns", "deleted_memories", "deleted_events", "deleted_jobs", "expired_request_ids", "deleted_image_analyses", "deleted_low_confidence_memories")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_TURNS_FIELD_NUMBER: _ClassVar[int]
    DELETED_MEMORIES_FIELD_NUMBER: _ClassVar[int]
    DELETED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_JOBS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_IMAGE_ANALYSES_FIELD_NUMBER: _ClassVar[int]
    DELETED_LOW_CONFIDENCE_MEMORIES_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    archived_turns: int
    deleted_memories: int
    deleted_events: int
    deleted_jobs: int
    expired_request_ids: int
    deleted_image_analyses: int
    deleted_low_confidence_memories: int
    def __init__(self, dry_run: bool = ..., archived_turns: _Optional[int] = ..., deleted_memories: _Optional[int] = ..., deleted_events: _Optional[int] = ..., deleted_jobs: _Optional[int] = ..., expired_request_ids: _Optional[int] = ..., deleted_image_analyses: _Optional[int] = ..., deleted_low_confidence_memories: _Optional[int] = ...) -> None: ...
