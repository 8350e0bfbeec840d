from . import image_facts_pb2 as _image_facts_pb2
from . import orchestrator_pb2 as _orchestrator_pb2
from . import project_pb2 as _project_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportProjectRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class ExportProjectResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: ProjectRecord
    def __init__(self, record: _Optional[_Union[ProjectRecord, _Mapping]] = ...) -> None: ...

class ImportProjectRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: ProjectRecord
    def __init__(self, record: _Optional[_Union[ProjectRecord, _Mapping]] = ...) -> None: ...

class ImportProjectResponse(_message.Message):
    __slots__ = ("project", "imported")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    project: _project_pb2.Project
    imported: ProjectRecordCounts
    def __init__(self, project: _Optional[_Union[_project_pb2.Project, _Mapping]] = ..., imported: _Optional[_Union[ProjectRecordCounts, _Mapping]] = ...) -> None: ...

class ProjectRecord(_message.Message):
    __slots__ = ("header", "scene", "memory", "turn", "image")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SCENE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    header: ExportHeader
    scene: _project_pb2.Scene
    memory: _project_pb2.MemoryItem
    turn: _orchestrator_pb2.ConversationTurn
    image: _image_facts_pb2.ImageAnalysis
    def __init__(self, header: _Optional[_Union[ExportHeader, _Mapping]] = ..., scene: _Optional[_Union[_project_pb2.Scene, _Mapping]] = ..., memory: _Optional[_Union[_project_pb2.MemoryItem, _Mapping]] = ..., turn: _Optional[_Union[_orchestrator_pb2.ConversationTurn, _Mapping]] = ..., image: _Optional[_Union[_image_facts_pb2.ImageAnalysis, _Mapping]] = ...) -> None: ...

class ExportHeader(_message.Message):
    __slots__ = ("format_version", "project", "counts")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    project: _project_pb2.Project
    counts: ProjectRecordCounts
    def __init__(self, format_version: _Optional[int] = ..., project: _Optional[_Union[_project_pb2.Project, _Mapping]] = ..., counts: _Optional[_Union[ProjectRecordCounts, _Mapping]] = ...) -> None: ...

class ProjectRecordCounts(_message.Message):
    __slots__ = ("scenes", "memory_items", "conversation_turns", "image_analyses")
    SCENES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_TURNS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ANALYSES_FIELD_NUMBER: _ClassVar[int]
    scenes: int
    memory_items: int
    conversation_turns: int
    image_analyses: int
    def __init__(self, scenes: _Optional[int] = ..., memory_items: _Optional[int] = ..., conversation_turns: _Optional[int] = ..., image_analyses: _Optional[int] = ...) -> None: ...
