import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SceneStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCENE_STATUS_UNSPECIFIED: _ClassVar[SceneStatus]
    SCENE_STATUS_OK: _ClassVar[SceneStatus]
    SCENE_STATUS_BROKEN: _ClassVar[SceneStatus]

class MemoryType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMORY_TYPE_UNSPECIFIED: _ClassVar[MemoryType]
    MEMORY_TYPE_USER_PREFERENCE: _ClassVar[MemoryType]
    MEMORY_TYPE_SCENE_RELATIONSHIP: _ClassVar[MemoryType]
    MEMORY_TYPE_CONVERSATION_CONTEXT: _ClassVar[MemoryType]

class MemorySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMORY_SOURCE_UNSPECIFIED: _ClassVar[MemorySource]
    MEMORY_SOURCE_API: _ClassVar[MemorySource]
    MEMORY_SOURCE_PROMPT: _ClassVar[MemorySource]
    MEMORY_SOURCE_IMAGE: _ClassVar[MemorySource]
    MEMORY_SOURCE_DECISION: _ClassVar[MemorySource]
SCENE_STATUS_UNSPECIFIED: SceneStatus
SCENE_STATUS_OK: SceneStatus
SCENE_STATUS_BROKEN: SceneStatus
MEMORY_TYPE_UNSPECIFIED: MemoryType
MEMORY_TYPE_USER_PREFERENCE: MemoryType
MEMORY_TYPE_SCENE_RELATIONSHIP: MemoryType
MEMORY_TYPE_CONVERSATION_CONTEXT: MemoryType
MEMORY_SOURCE_UNSPECIFIED: MemorySource
MEMORY_SOURCE_API: MemorySource
MEMORY_SOURCE_PROMPT: MemorySource
MEMORY_SOURCE_IMAGE: MemorySource
MEMORY_SOURCE_DECISION: MemorySource

class Project(_message.Message):
    __slots__ = ("project_id", "name", "description", "create_time", "update_time")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    name: str
    description: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, project_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Scene(_message.Message):
    __slots__ = ("scene_id", "project_id", "name", "position", "summary", "duration_seconds", "status", "summary_tokens", "create_time", "update_time")
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    scene_id: str
    project_id: str
    name: str
    position: int
    summary: str
    duration_seconds: float
    status: SceneStatus
    summary_tokens: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, scene_id: _Optional[str] = ..., project_id: _Optional[str] = ..., name: _Optional[str] = ..., position: _Optional[int] = ..., summary: _Optional[str] = ..., duration_seconds: _Optional[float] = ..., status: _Optional[_Union[SceneStatus, str]] = ..., summary_tokens: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MemoryItem(_message.Message):
    __slots__ = ("memory_id", "project_id", "type", "key", "value", "confidence", "source", "source_prompt", "token_count", "occurrences", "create_time", "update_time", "expire_time")
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    OCCURRENCES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    memory_id: str
    project_id: str
    type: MemoryType
    key: str
    value: str
    confidence: float
    source: MemorySource
    source_prompt: str
    token_count: int
    occurrences: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, memory_id: _Optional[str] = ..., project_id: _Optional[str] = ..., type: _Optional[_Union[MemoryType, str]] = ..., key: _Optional[str] = ..., value: _Optional[str] = ..., confidence: _Optional[float] = ..., source: _Optional[_Union[MemorySource, str]] = ..., source_prompt: _Optional[str] = ..., token_count: _Optional[int] = ..., occurrences: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MemoryKey(_message.Message):
    __slots__ = ("type", "key")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    type: MemoryType
    key: str
    def __init__(self, type: _Optional[_Union[MemoryType, str]] = ..., key: _Optional[str] = ...) -> None: ...

class CreateProjectRequest(_message.Message):
    __slots__ = ("name", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class CreateProjectResponse(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: Project
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...

class GetProjectRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class GetProjectResponse(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: Project
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ("projects", "next_page_token")
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    next_page_token: str
    def __init__(self, projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateProjectRequest(_message.Message):
    __slots__ = ("project", "update_mask")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    project: Project
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateProjectResponse(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: Project
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...

class DeleteProjectRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class DeleteProjectResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: DeletedRows
    def __init__(self, deleted: _Optional[_Union[DeletedRows, _Mapping]] = ...) -> None: ...

class DeletedRows(_message.Message):
    __slots__ = ("scenes", "memory_items", "conversation_turns", "orchestrations", "image_analyses", "jobs", "events")
    SCENES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_TURNS_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATIONS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ANALYSES_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    scenes: int
    memory_items: int
    conversation_turns: int
    orchestrations: int
    image_analyses: int
    jobs: int
    events: int
    def __init__(self, scenes: _Optional[int] = ..., memory_items: _Optional[int] = ..., conversation_turns: _Optional[int] = ..., orchestrations: _Optional[int] = ..., image_analyses: _Optional[int] = ..., jobs: _Optional[int] = ..., events: _Optional[int] = ...) -> None: ...

class UpsertSceneRequest(_message.Message):
    __slots__ = ("project_id", "scene_id", "name", "position", "summary", "duration_seconds", "status")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    scene_id: str
    name: str
    position: int
    summary: str
    duration_seconds: float
    status: SceneStatus
    def __init__(self, project_id: _Optional[str] = ..., scene_id: _Optional[str] = ..., name: _Optional[str] = ..., position: _Optional[int] = ..., summary: _Optional[str] = ..., duration_seconds: _Optional[float] = ..., status: _Optional[_Union[SceneStatus, str]] = ...) -> None: ...

class UpsertSceneResponse(_message.Message):
    __slots__ = ("scene", "created")
    SCENE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    scene: Scene
    created: bool
    def __init__(self, scene: _Optional[_Union[Scene, _Mapping]] = ..., created: bool = ...) -> None: ...

class DeleteSceneRequest(_message.Message):
    __slots__ = ("project_id", "scene_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    scene_id: str
    def __init__(self, project_id: _Optional[str] = ..., scene_id: _Optional[str] = ...) -> None: ...

class DeleteSceneResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListScenesRequest(_message.Message):
    __slots__ = ("project_id", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListScenesResponse(_message.Message):
    __slots__ = ("scenes", "next_page_token")
    SCENES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    scenes: _containers.RepeatedCompositeFieldContainer[Scene]
    next_page_token: str
    def __init__(self, scenes: _Optional[_Iterable[_Union[Scene, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PutMemoryRequest(_message.Message):
    __slots__ = ("project_id", "type", "key", "value", "confidence", "ttl")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    type: MemoryType
    key: str
    value: str
    confidence: float
    ttl: _duration_pb2.Duration
    def __init__(self, project_id: _Optional[str] = ..., type: _Optional[_Union[MemoryType, str]] = ..., key: _Optional[str] = ..., value: _Optional[str] = ..., confidence: _Optional[float] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class PutMemoryResponse(_message.Message):
    __slots__ = ("memory", "created")
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    memory: MemoryItem
    created: bool
    def __init__(self, memory: _Optional[_Union[MemoryItem, _Mapping]] = ..., created: bool = ...) -> None: ...

class DeleteMemoryRequest(_message.Message):
    __slots__ = ("project_id", "memory_id", "memory_key")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_KEY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    memory_id: str
    memory_key: MemoryKey
    def __init__(self, project_id: _Optional[str] = ..., memory_id: _Optional[str] = ..., memory_key: _Optional[_Union[MemoryKey, _Mapping]] = ...) -> None: ...

class DeleteMemoryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMemoriesRequest(_message.Message):
    __slots__ = ("project_id", "type", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    type: MemoryType
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., type: _Optional[_Union[MemoryType, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMemoriesResponse(_message.Message):
    __slots__ = ("memories", "next_page_token")
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    memories: _containers.RepeatedCompositeFieldContainer[MemoryItem]
    next_page_token: str
    def __init__(self, memories: _Optional[_Iterable[_Union[MemoryItem, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
