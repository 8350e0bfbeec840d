import datetime

from . import project_pb2 as _project_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageAnalysisStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_ANALYSIS_STATUS_UNSPECIFIED: _ClassVar[ImageAnalysisStatus]
    IMAGE_ANALYSIS_STATUS_PENDING: _ClassVar[ImageAnalysisStatus]
    IMAGE_ANALYSIS_STATUS_RUNNING: _ClassVar[ImageAnalysisStatus]
    IMAGE_ANALYSIS_STATUS_READY: _ClassVar[ImageAnalysisStatus]
    IMAGE_ANALYSIS_STATUS_FAILED: _ClassVar[ImageAnalysisStatus]

class Orientation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORIENTATION_UNSPECIFIED: _ClassVar[Orientation]
    ORIENTATION_LANDSCAPE: _ClassVar[Orientation]
    ORIENTATION_PORTRAIT: _ClassVar[Orientation]
    ORIENTATION_SQUARE: _ClassVar[Orientation]

class TypographyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TYPOGRAPHY_STATUS_UNSPECIFIED: _ClassVar[TypographyStatus]
    TYPOGRAPHY_STATUS_UNKNOWN: _ClassVar[TypographyStatus]
    TYPOGRAPHY_STATUS_NONE: _ClassVar[TypographyStatus]
    TYPOGRAPHY_STATUS_DETECTED: _ClassVar[TypographyStatus]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_IMAGE_FACTS_READY: _ClassVar[EventType]
    EVENT_TYPE_IMAGE_FACTS_PROCESSED: _ClassVar[EventType]
    EVENT_TYPE_IMAGE_FACTS_FAILED: _ClassVar[EventType]
IMAGE_ANALYSIS_STATUS_UNSPECIFIED: ImageAnalysisStatus
IMAGE_ANALYSIS_STATUS_PENDING: ImageAnalysisStatus
IMAGE_ANALYSIS_STATUS_RUNNING: ImageAnalysisStatus
IMAGE_ANALYSIS_STATUS_READY: ImageAnalysisStatus
IMAGE_ANALYSIS_STATUS_FAILED: ImageAnalysisStatus
ORIENTATION_UNSPECIFIED: Orientation
ORIENTATION_LANDSCAPE: Orientation
ORIENTATION_PORTRAIT: Orientation
ORIENTATION_SQUARE: Orientation
TYPOGRAPHY_STATUS_UNSPECIFIED: TypographyStatus
TYPOGRAPHY_STATUS_UNKNOWN: TypographyStatus
TYPOGRAPHY_STATUS_NONE: TypographyStatus
TYPOGRAPHY_STATUS_DETECTED: TypographyStatus
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_IMAGE_FACTS_READY: EventType
EVENT_TYPE_IMAGE_FACTS_PROCESSED: EventType
EVENT_TYPE_IMAGE_FACTS_FAILED: EventType

class ImageInput(_message.Message):
    __slots__ = ("data", "url", "mime_type", "image_id")
    DATA_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    url: str
    mime_type: str
    image_id: str
    def __init__(self, data: _Optional[bytes] = ..., url: _Optional[str] = ..., mime_type: _Optional[str] = ..., image_id: _Optional[str] = ...) -> None: ...

class PaletteColor(_message.Message):
    __slots__ = ("hex", "proportion", "name")
    HEX_FIELD_NUMBER: _ClassVar[int]
    PROPORTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    hex: str
    proportion: float
    name: str
    def __init__(self, hex: _Optional[str] = ..., proportion: _Optional[float] = ..., name: _Optional[str] = ...) -> None: ...

class Typography(_message.Message):
    __slots__ = ("status", "font_families", "style")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FONT_FAMILIES_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    status: TypographyStatus
    font_families: _containers.RepeatedScalarFieldContainer[str]
    style: str
    def __init__(self, status: _Optional[_Union[TypographyStatus, str]] = ..., font_families: _Optional[_Iterable[str]] = ..., style: _Optional[str] = ...) -> None: ...

class Layout(_message.Message):
    __slots__ = ("weight_grid", "dominant_region", "balance", "description")
    WEIGHT_GRID_FIELD_NUMBER: _ClassVar[int]
    DOMINANT_REGION_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    weight_grid: _containers.RepeatedScalarFieldContainer[float]
    dominant_region: str
    balance: str
    description: str
    def __init__(self, weight_grid: _Optional[_Iterable[float]] = ..., dominant_region: _Optional[str] = ..., balance: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ImageFacts(_message.Message):
    __slots__ = ("palette", "mood", "typography", "layout", "width", "height", "processing_ms", "brightness", "contrast", "saturation", "warmth", "orientation", "aspect_ratio", "analyzer", "content_sha256")
    PALETTE_FIELD_NUMBER: _ClassVar[int]
    MOOD_FIELD_NUMBER: _ClassVar[int]
    TYPOGRAPHY_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_MS_FIELD_NUMBER: _ClassVar[int]
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_FIELD_NUMBER: _ClassVar[int]
    SATURATION_FIELD_NUMBER: _ClassVar[int]
    WARMTH_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    ANALYZER_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    palette: _containers.RepeatedCompositeFieldContainer[PaletteColor]
    mood: str
    typography: Typography
    layout: Layout
    width: int
    height: int
    processing_ms: float
    brightness: float
    contrast: float
    saturation: float
    warmth: float
    orientation: Orientation
    aspect_ratio: float
    analyzer: str
    content_sha256: str
    def __init__(self, palette: _Optional[_Iterable[_Union[PaletteColor, _Mapping]]] = ..., mood: _Optional[str] = ..., typography: _Optional[_Union[Typography, _Mapping]] = ..., layout: _Optional[_Union[Layout, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., processing_ms: _Optional[float] = ..., brightness: _Optional[float] = ..., contrast: _Optional[float] = ..., saturation: _Optional[float] = ..., warmth: _Optional[float] = ..., orientation: _Optional[_Union[Orientation, str]] = ..., aspect_ratio: _Optional[float] = ..., analyzer: _Optional[str] = ..., content_sha256: _Optional[str] = ...) -> None: ...

class ImageAnalysis(_message.Message):
    __slots__ = ("image_id", "project_id", "orchestration_id", "status", "facts", "error", "attempts", "source_url", "mime_type", "byte_size", "create_time", "complete_time")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    project_id: str
    orchestration_id: str
    status: ImageAnalysisStatus
    facts: ImageFacts
    error: str
    attempts: int
    source_url: str
    mime_type: str
    byte_size: int
    create_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    def __init__(self, image_id: _Optional[str] = ..., project_id: _Optional[str] = ..., orchestration_id: _Optional[str] = ..., status: _Optional[_Union[ImageAnalysisStatus, str]] = ..., facts: _Optional[_Union[ImageFacts, _Mapping]] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., source_url: _Optional[str] = ..., mime_type: _Optional[str] = ..., byte_size: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ImageFactsEvent(_message.Message):
    __slots__ = ("cursor", "type", "project_id", "image_id", "orchestration_id", "facts", "error", "derived_preferences", "create_time")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATION_ID_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DERIVED_PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    type: EventType
    project_id: str
    image_id: str
    orchestration_id: str
    facts: ImageFacts
    error: str
    derived_preferences: _containers.RepeatedCompositeFieldContainer[_project_pb2.MemoryItem]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, cursor: _Optional[int] = ..., type: _Optional[_Union[EventType, str]] = ..., project_id: _Optional[str] = ..., image_id: _Optional[str] = ..., orchestration_id: _Optional[str] = ..., facts: _Optional[_Union[ImageFacts, _Mapping]] = ..., error: _Optional[str] = ..., derived_preferences: _Optional[_Iterable[_Union[_project_pb2.MemoryItem, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("time", "latest_cursor")
    TIME_FIELD_NUMBER: _ClassVar[int]
    LATEST_CURSOR_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    latest_cursor: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_cursor: _Optional[int] = ...) -> None: ...

class AnalyzeImagesRequest(_message.Message):
    __slots__ = ("project_id", "images")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    images: _containers.RepeatedCompositeFieldContainer[ImageInput]
    def __init__(self, project_id: _Optional[str] = ..., images: _Optional[_Iterable[_Union[ImageInput, _Mapping]]] = ...) -> None: ...

class AnalyzeImagesResponse(_message.Message):
    __slots__ = ("analyses",)
    ANALYSES_FIELD_NUMBER: _ClassVar[int]
    analyses: _containers.RepeatedCompositeFieldContainer[ImageAnalysis]
    def __init__(self, analyses: _Optional[_Iterable[_Union[ImageAnalysis, _Mapping]]] = ...) -> None: ...

class GetImageFactsRequest(_message.Message):
    __slots__ = ("project_id", "image_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    image_id: str
    def __init__(self, project_id: _Optional[str] = ..., image_id: _Optional[str] = ...) -> None: ...

class GetImageFactsResponse(_message.Message):
    __slots__ = ("analysis",)
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    analysis: ImageAnalysis
    def __init__(self, analysis: _Optional[_Union[ImageAnalysis, _Mapping]] = ...) -> None: ...

class ListImageFactsRequest(_message.Message):
    __slots__ = ("project_id", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListImageFactsResponse(_message.Message):
    __slots__ = ("analyses", "next_page_token")
    ANALYSES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    analyses: _containers.RepeatedCompositeFieldContainer[ImageAnalysis]
    next_page_token: str
    def __init__(self, analyses: _Optional[_Iterable[_Union[ImageAnalysis, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchImageFactsRequest(_message.Message):
    __slots__ = ("project_id", "after_cursor", "orchestration_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    after_cursor: int
    orchestration_id: str
    def __init__(self, project_id: _Optional[str] = ..., after_cursor: _Optional[int] = ..., orchestration_id: _Optional[str] = ...) -> None: ...

class WatchImageFactsResponse(_message.Message):
    __slots__ = ("event", "heartbeat")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    event: ImageFactsEvent
    heartbeat: Heartbeat
    def __init__(self, event: _Optional[_Union[ImageFactsEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...
