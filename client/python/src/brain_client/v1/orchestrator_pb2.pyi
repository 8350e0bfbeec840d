import datetime

from . import image_facts_pb2 as _image_facts_pb2
from . import project_pb2 as _project_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tool(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_UNSPECIFIED: _ClassVar[Tool]
    TOOL_ADD_SCENE: _ClassVar[Tool]
    TOOL_EDIT_SCENE: _ClassVar[Tool]
    TOOL_DELETE_SCENE: _ClassVar[Tool]
    TOOL_FIX_BROKEN_SCENE: _ClassVar[Tool]
    TOOL_CHANGE_DURATION: _ClassVar[Tool]
    TOOL_ANALYZE_IMAGE: _ClassVar[Tool]
    TOOL_CREATE_SCENE_FROM_IMAGE: _ClassVar[Tool]
    TOOL_EDIT_SCENE_WITH_IMAGE: _ClassVar[Tool]

class EditComplexity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EDIT_COMPLEXITY_UNSPECIFIED: _ClassVar[EditComplexity]
    EDIT_COMPLEXITY_SURGICAL: _ClassVar[EditComplexity]
    EDIT_COMPLEXITY_CREATIVE: _ClassVar[EditComplexity]
    EDIT_COMPLEXITY_STRUCTURAL: _ClassVar[EditComplexity]

class DecisionBackend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_BACKEND_UNSPECIFIED: _ClassVar[DecisionBackend]
    DECISION_BACKEND_RULES: _ClassVar[DecisionBackend]
    DECISION_BACKEND_OPENAI: _ClassVar[DecisionBackend]

class ContextSection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTEXT_SECTION_UNSPECIFIED: _ClassVar[ContextSection]
    CONTEXT_SECTION_PREFERENCES: _ClassVar[ContextSection]
    CONTEXT_SECTION_SCENES: _ClassVar[ContextSection]
    CONTEXT_SECTION_IMAGE_FACTS: _ClassVar[ContextSection]
    CONTEXT_SECTION_CONVERSATION: _ClassVar[ContextSection]
    CONTEXT_SECTION_PENDING_IMAGES: _ClassVar[ContextSection]
    CONTEXT_SECTION_PROMPT: _ClassVar[ContextSection]
    CONTEXT_SECTION_FRAME: _ClassVar[ContextSection]

class DropAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DROP_ACTION_UNSPECIFIED: _ClassVar[DropAction]
    DROP_ACTION_DROPPED: _ClassVar[DropAction]
    DROP_ACTION_SUMMARY_REMOVED: _ClassVar[DropAction]
    DROP_ACTION_MIDDLE_CUT: _ClassVar[DropAction]
TOOL_UNSPECIFIED: Tool
TOOL_ADD_SCENE: Tool
TOOL_EDIT_SCENE: Tool
TOOL_DELETE_SCENE: Tool
TOOL_FIX_BROKEN_SCENE: Tool
TOOL_CHANGE_DURATION: Tool
TOOL_ANALYZE_IMAGE: Tool
TOOL_CREATE_SCENE_FROM_IMAGE: Tool
TOOL_EDIT_SCENE_WITH_IMAGE: Tool
EDIT_COMPLEXITY_UNSPECIFIED: EditComplexity
EDIT_COMPLEXITY_SURGICAL: EditComplexity
EDIT_COMPLEXITY_CREATIVE: EditComplexity
EDIT_COMPLEXITY_STRUCTURAL: EditComplexity
DECISION_BACKEND_UNSPECIFIED: DecisionBackend
DECISION_BACKEND_RULES: DecisionBackend
DECISION_BACKEND_OPENAI: DecisionBackend
CONTEXT_SECTION_UNSPECIFIED: ContextSection
CONTEXT_SECTION_PREFERENCES: ContextSection
CONTEXT_SECTION_SCENES: ContextSection
CONTEXT_SECTION_IMAGE_FACTS: ContextSection
CONTEXT_SECTION_CONVERSATION: ContextSection
CONTEXT_SECTION_PENDING_IMAGES: ContextSection
CONTEXT_SECTION_PROMPT: ContextSection
CONTEXT_SECTION_FRAME: ContextSection
DROP_ACTION_UNSPECIFIED: DropAction
DROP_ACTION_DROPPED: DropAction
DROP_ACTION_SUMMARY_REMOVED: DropAction
DROP_ACTION_MIDDLE_CUT: DropAction

class ToolParams(_message.Message):
    __slots__ = ("duration_seconds", "image_ids", "attributes", "insert_position")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    INSERT_POSITION_FIELD_NUMBER: _ClassVar[int]
    duration_seconds: float
    image_ids: _containers.RepeatedScalarFieldContainer[str]
    attributes: _containers.ScalarMap[str, str]
    insert_position: int
    def __init__(self, duration_seconds: _Optional[float] = ..., image_ids: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., insert_position: _Optional[int] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("tool", "target_scene_id", "complexity", "params", "instruction")
    TOOL_FIELD_NUMBER: _ClassVar[int]
    TARGET_SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    tool: Tool
    target_scene_id: str
    complexity: EditComplexity
    params: ToolParams
    instruction: str
    def __init__(self, tool: _Optional[_Union[Tool, str]] = ..., target_scene_id: _Optional[str] = ..., complexity: _Optional[_Union[EditComplexity, str]] = ..., params: _Optional[_Union[ToolParams, _Mapping]] = ..., instruction: _Optional[str] = ...) -> None: ...

class Workflow(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[ToolCall]
    def __init__(self, steps: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ...) -> None: ...

class Clarification(_message.Message):
    __slots__ = ("question", "candidate_scene_ids")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SCENE_IDS_FIELD_NUMBER: _ClassVar[int]
    question: str
    candidate_scene_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, question: _Optional[str] = ..., candidate_scene_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("tool_call", "workflow", "clarification", "reasoning", "backend", "fallback_reason", "confidence")
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    CLARIFICATION_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    tool_call: ToolCall
    workflow: Workflow
    clarification: Clarification
    reasoning: str
    backend: DecisionBackend
    fallback_reason: str
    confidence: float
    def __init__(self, tool_call: _Optional[_Union[ToolCall, _Mapping]] = ..., workflow: _Optional[_Union[Workflow, _Mapping]] = ..., clarification: _Optional[_Union[Clarification, _Mapping]] = ..., reasoning: _Optional[str] = ..., backend: _Optional[_Union[DecisionBackend, str]] = ..., fallback_reason: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class SectionTokens(_message.Message):
    __slots__ = ("section", "tokens_before", "tokens_after", "items_before", "items_after")
    SECTION_FIELD_NUMBER: _ClassVar[int]
    TOKENS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_AFTER_FIELD_NUMBER: _ClassVar[int]
    ITEMS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_AFTER_FIELD_NUMBER: _ClassVar[int]
    section: ContextSection
    tokens_before: int
    tokens_after: int
    items_before: int
    items_after: int
    def __init__(self, section: _Optional[_Union[ContextSection, str]] = ..., tokens_before: _Optional[int] = ..., tokens_after: _Optional[int] = ..., items_before: _Optional[int] = ..., items_after: _Optional[int] = ...) -> None: ...

class DroppedItem(_message.Message):
    __slots__ = ("section", "item_id", "action", "tokens")
    SECTION_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    section: ContextSection
    item_id: str
    action: DropAction
    tokens: int
    def __init__(self, section: _Optional[_Union[ContextSection, str]] = ..., item_id: _Optional[str] = ..., action: _Optional[_Union[DropAction, str]] = ..., tokens: _Optional[int] = ...) -> None: ...

class TokenReport(_message.Message):
    __slots__ = ("budget", "total_before", "total_after", "sections", "dropped", "truncated", "prompt_truncated", "budget_warning", "encoding")
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_AFTER_FIELD_NUMBER: _ClassVar[int]
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_WARNING_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    budget: int
    total_before: int
    total_after: int
    sections: _containers.RepeatedCompositeFieldContainer[SectionTokens]
    dropped: _containers.RepeatedCompositeFieldContainer[DroppedItem]
    truncated: bool
    prompt_truncated: bool
    budget_warning: bool
    encoding: str
    def __init__(self, budget: _Optional[int] = ..., total_before: _Optional[int] = ..., total_after: _Optional[int] = ..., sections: _Optional[_Iterable[_Union[SectionTokens, _Mapping]]] = ..., dropped: _Optional[_Iterable[_Union[DroppedItem, _Mapping]]] = ..., truncated: bool = ..., prompt_truncated: bool = ..., budget_warning: bool = ..., encoding: _Optional[str] = ...) -> None: ...

class SceneContext(_message.Message):
    __slots__ = ("scene", "relationships")
    SCENE_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    scene: _project_pb2.Scene
    relationships: _containers.RepeatedCompositeFieldContainer[_project_pb2.MemoryItem]
    def __init__(self, scene: _Optional[_Union[_project_pb2.Scene, _Mapping]] = ..., relationships: _Optional[_Iterable[_Union[_project_pb2.MemoryItem, _Mapping]]] = ...) -> None: ...

class ConversationTurn(_message.Message):
    __slots__ = ("turn_id", "orchestration_id", "prompt", "decision_summary", "token_count", "create_time", "archived")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    DECISION_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    orchestration_id: str
    prompt: str
    decision_summary: str
    token_count: int
    create_time: _timestamp_pb2.Timestamp
    archived: bool
    def __init__(self, turn_id: _Optional[str] = ..., orchestration_id: _Optional[str] = ..., prompt: _Optional[str] = ..., decision_summary: _Optional[str] = ..., token_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., archived: bool = ...) -> None: ...

class ImageFactsSummary(_message.Message):
    __slots__ = ("image_id", "facts")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    facts: _image_facts_pb2.ImageFacts
    def __init__(self, image_id: _Optional[str] = ..., facts: _Optional[_Union[_image_facts_pb2.ImageFacts, _Mapping]] = ...) -> None: ...

class ContextPacket(_message.Message):
    __slots__ = ("project_id", "preferences", "scenes", "image_facts", "recent_turns", "pending_image_ids", "build_time")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    SCENES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FACTS_FIELD_NUMBER: _ClassVar[int]
    RECENT_TURNS_FIELD_NUMBER: _ClassVar[int]
    PENDING_IMAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    BUILD_TIME_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    preferences: _containers.RepeatedCompositeFieldContainer[_project_pb2.MemoryItem]
    scenes: _containers.RepeatedCompositeFieldContainer[SceneContext]
    image_facts: _containers.RepeatedCompositeFieldContainer[ImageFactsSummary]
    recent_turns: _containers.RepeatedCompositeFieldContainer[ConversationTurn]
    pending_image_ids: _containers.RepeatedScalarFieldContainer[str]
    build_time: _timestamp_pb2.Timestamp
    def __init__(self, project_id: _Optional[str] = ..., preferences: _Optional[_Iterable[_Union[_project_pb2.MemoryItem, _Mapping]]] = ..., scenes: _Optional[_Iterable[_Union[SceneContext, _Mapping]]] = ..., image_facts: _Optional[_Iterable[_Union[ImageFactsSummary, _Mapping]]] = ..., recent_turns: _Optional[_Iterable[_Union[ConversationTurn, _Mapping]]] = ..., pending_image_ids: _Optional[_Iterable[str]] = ..., build_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StageTimings(_message.Message):
    __slots__ = ("context_build_ms", "token_budget_ms", "decision_ms", "persistence_ms", "image_enqueue_ms", "total_ms")
    CONTEXT_BUILD_MS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_MS_FIELD_NUMBER: _ClassVar[int]
    DECISION_MS_FIELD_NUMBER: _ClassVar[int]
    PERSISTENCE_MS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ENQUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    context_build_ms: float
    token_budget_ms: float
    decision_ms: float
    persistence_ms: float
    image_enqueue_ms: float
    total_ms: float
    def __init__(self, context_build_ms: _Optional[float] = ..., token_budget_ms: _Optional[float] = ..., decision_ms: _Optional[float] = ..., persistence_ms: _Optional[float] = ..., image_enqueue_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class Orchestration(_message.Message):
    __slots__ = ("orchestration_id", "project_id", "request_id", "decision", "enhanced_prompt", "token_report", "context", "images", "degraded", "degraded_reason", "timings", "create_time")
    ORCHESTRATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ENHANCED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REPORT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    orchestration_id: str
    project_id: str
    request_id: str
    decision: Decision
    enhanced_prompt: str
    token_report: TokenReport
    context: ContextPacket
    images: _containers.RepeatedCompositeFieldContainer[_image_facts_pb2.ImageAnalysis]
    degraded: bool
    degraded_reason: str
    timings: StageTimings
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, orchestration_id: _Optional[str] = ..., project_id: _Optional[str] = ..., request_id: _Optional[str] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ..., enhanced_prompt: _Optional[str] = ..., token_report: _Optional[_Union[TokenReport, _Mapping]] = ..., context: _Optional[_Union[ContextPacket, _Mapping]] = ..., images: _Optional[_Iterable[_Union[_image_facts_pb2.ImageAnalysis, _Mapping]]] = ..., degraded: bool = ..., degraded_reason: _Optional[str] = ..., timings: _Optional[_Union[StageTimings, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OrchestrateRequest(_message.Message):
    __slots__ = ("project_id", "prompt", "images", "request_id", "token_budget")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    prompt: str
    images: _containers.RepeatedCompositeFieldContainer[_image_facts_pb2.ImageInput]
    request_id: str
    token_budget: int
    def __init__(self, project_id: _Optional[str] = ..., prompt: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_image_facts_pb2.ImageInput, _Mapping]]] = ..., request_id: _Optional[str] = ..., token_budget: _Optional[int] = ...) -> None: ...

class OrchestrateResponse(_message.Message):
    __slots__ = ("orchestration", "replayed")
    ORCHESTRATION_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    orchestration: Orchestration
    replayed: bool
    def __init__(self, orchestration: _Optional[_Union[Orchestration, _Mapping]] = ..., replayed: bool = ...) -> None: ...

class OrchestrateStreamRequest(_message.Message):
    __slots__ = ("project_id", "prompt", "images", "request_id", "token_budget", "image_wait")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WAIT_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    prompt: str
    images: _containers.RepeatedCompositeFieldContainer[_image_facts_pb2.ImageInput]
    request_id: str
    token_budget: int
    image_wait: _duration_pb2.Duration
    def __init__(self, project_id: _Optional[str] = ..., prompt: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_image_facts_pb2.ImageInput, _Mapping]]] = ..., request_id: _Optional[str] = ..., token_budget: _Optional[int] = ..., image_wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ContextBuilt(_message.Message):
    __slots__ = ("context", "enhanced_prompt", "token_report")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ENHANCED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REPORT_FIELD_NUMBER: _ClassVar[int]
    context: ContextPacket
    enhanced_prompt: str
    token_report: TokenReport
    def __init__(self, context: _Optional[_Union[ContextPacket, _Mapping]] = ..., enhanced_prompt: _Optional[str] = ..., token_report: _Optional[_Union[TokenReport, _Mapping]] = ...) -> None: ...

class DecisionMade(_message.Message):
    __slots__ = ("orchestration_id", "decision")
    ORCHESTRATION_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    orchestration_id: str
    decision: Decision
    def __init__(self, orchestration_id: _Optional[str] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class OrchestrationCompleted(_message.Message):
    __slots__ = ("orchestration", "replayed", "pending_image_ids")
    ORCHESTRATION_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    PENDING_IMAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    orchestration: Orchestration
    replayed: bool
    pending_image_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, orchestration: _Optional[_Union[Orchestration, _Mapping]] = ..., replayed: bool = ..., pending_image_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class OrchestrateStreamResponse(_message.Message):
    __slots__ = ("context_built", "decision_made", "image_event", "completed")
    CONTEXT_BUILT_FIELD_NUMBER: _ClassVar[int]
    DECISION_MADE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_EVENT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    context_built: ContextBuilt
    decision_made: DecisionMade
    image_event: _image_facts_pb2.ImageFactsEvent
    completed: OrchestrationCompleted
    def __init__(self, context_built: _Optional[_Union[ContextBuilt, _Mapping]] = ..., decision_made: _Optional[_Union[DecisionMade, _Mapping]] = ..., image_event: _Optional[_Union[_image_facts_pb2.ImageFactsEvent, _Mapping]] = ..., completed: _Optional[_Union[OrchestrationCompleted, _Mapping]] = ...) -> None: ...

class GetContextPacketRequest(_message.Message):
    __slots__ = ("project_id", "prompt", "token_budget")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    prompt: str
    token_budget: int
    def __init__(self, project_id: _Optional[str] = ..., prompt: _Optional[str] = ..., token_budget: _Optional[int] = ...) -> None: ...

class GetContextPacketResponse(_message.Message):
    __slots__ = ("context", "enhanced_prompt", "token_report", "cache_hit")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ENHANCED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REPORT_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    context: ContextPacket
    enhanced_prompt: str
    token_report: TokenReport
    cache_hit: bool
    def __init__(self, context: _Optional[_Union[ContextPacket, _Mapping]] = ..., enhanced_prompt: _Optional[str] = ..., token_report: _Optional[_Union[TokenReport, _Mapping]] = ..., cache_hit: bool = ...) -> None: ...
