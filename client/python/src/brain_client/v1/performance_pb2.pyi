import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportWindow(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_WINDOW_UNSPECIFIED: _ClassVar[ReportWindow]
    REPORT_WINDOW_LAST_1_MINUTE: _ClassVar[ReportWindow]
    REPORT_WINDOW_LAST_5_MINUTES: _ClassVar[ReportWindow]
    REPORT_WINDOW_LAST_15_MINUTES: _ClassVar[ReportWindow]
    REPORT_WINDOW_SINCE_START: _ClassVar[ReportWindow]
REPORT_WINDOW_UNSPECIFIED: ReportWindow
REPORT_WINDOW_LAST_1_MINUTE: ReportWindow
REPORT_WINDOW_LAST_5_MINUTES: ReportWindow
REPORT_WINDOW_LAST_15_MINUTES: ReportWindow
REPORT_WINDOW_SINCE_START: ReportWindow

class LatencySummary(_message.Message):
    __slots__ = ("name", "count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_MS_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    def __init__(self, name: _Optional[str] = ..., count: _Optional[int] = ..., mean_ms: _Optional[float] = ..., p50_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., max_ms: _Optional[float] = ...) -> None: ...

class CodeCount(_message.Message):
    __slots__ = ("code", "count")
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    code: str
    count: int
    def __init__(self, code: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class RequestStats(_message.Message):
    __slots__ = ("total", "errors", "throughput_rps", "errors_by_code")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_RPS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_BY_CODE_FIELD_NUMBER: _ClassVar[int]
    total: int
    errors: int
    throughput_rps: float
    errors_by_code: _containers.RepeatedCompositeFieldContainer[CodeCount]
    def __init__(self, total: _Optional[int] = ..., errors: _Optional[int] = ..., throughput_rps: _Optional[float] = ..., errors_by_code: _Optional[_Iterable[_Union[CodeCount, _Mapping]]] = ...) -> None: ...

class MeasuredAsyncWin(_message.Message):
    __slots__ = ("samples", "mean_actual_ms", "mean_blocking_ms", "improvement")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MEAN_ACTUAL_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_BLOCKING_MS_FIELD_NUMBER: _ClassVar[int]
    IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    samples: int
    mean_actual_ms: float
    mean_blocking_ms: float
    improvement: float
    def __init__(self, samples: _Optional[int] = ..., mean_actual_ms: _Optional[float] = ..., mean_blocking_ms: _Optional[float] = ..., improvement: _Optional[float] = ...) -> None: ...

class EstimatedAsyncWin(_message.Message):
    __slots__ = ("old_context_ms", "old_decision_ms", "old_image_ms", "mean_old_ms", "mean_actual_ms", "improvement")
    OLD_CONTEXT_MS_FIELD_NUMBER: _ClassVar[int]
    OLD_DECISION_MS_FIELD_NUMBER: _ClassVar[int]
    OLD_IMAGE_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_OLD_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_ACTUAL_MS_FIELD_NUMBER: _ClassVar[int]
    IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    old_context_ms: float
    old_decision_ms: float
    old_image_ms: float
    mean_old_ms: float
    mean_actual_ms: float
    improvement: float
    def __init__(self, old_context_ms: _Optional[float] = ..., old_decision_ms: _Optional[float] = ..., old_image_ms: _Optional[float] = ..., mean_old_ms: _Optional[float] = ..., mean_actual_ms: _Optional[float] = ..., improvement: _Optional[float] = ...) -> None: ...

class AsyncWin(_message.Message):
    __slots__ = ("measured", "estimated", "target", "target_met")
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_MET_FIELD_NUMBER: _ClassVar[int]
    measured: MeasuredAsyncWin
    estimated: EstimatedAsyncWin
    target: float
    target_met: bool
    def __init__(self, measured: _Optional[_Union[MeasuredAsyncWin, _Mapping]] = ..., estimated: _Optional[_Union[EstimatedAsyncWin, _Mapping]] = ..., target: _Optional[float] = ..., target_met: bool = ...) -> None: ...

class CacheStats(_message.Message):
    __slots__ = ("hits", "misses", "hit_rate", "entries")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    hits: int
    misses: int
    hit_rate: float
    entries: int
    def __init__(self, hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., entries: _Optional[int] = ...) -> None: ...

class TokenStats(_message.Message):
    __slots__ = ("prompts", "mean_prompt_tokens", "max_prompt_tokens", "truncations", "budget_warnings")
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    MEAN_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATIONS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    prompts: int
    mean_prompt_tokens: float
    max_prompt_tokens: int
    truncations: int
    budget_warnings: int
    def __init__(self, prompts: _Optional[int] = ..., mean_prompt_tokens: _Optional[float] = ..., max_prompt_tokens: _Optional[int] = ..., truncations: _Optional[int] = ..., budget_warnings: _Optional[int] = ...) -> None: ...

class JobQueueStats(_message.Message):
    __slots__ = ("depth", "running", "wait_p95_ms", "run_p95_ms", "retries", "failures", "completed")
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    WAIT_P95_MS_FIELD_NUMBER: _ClassVar[int]
    RUN_P95_MS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    depth: int
    running: int
    wait_p95_ms: float
    run_p95_ms: float
    retries: int
    failures: int
    completed: int
    def __init__(self, depth: _Optional[int] = ..., running: _Optional[int] = ..., wait_p95_ms: _Optional[float] = ..., run_p95_ms: _Optional[float] = ..., retries: _Optional[int] = ..., failures: _Optional[int] = ..., completed: _Optional[int] = ...) -> None: ...

class StreamStats(_message.Message):
    __slots__ = ("watch_image_facts", "orchestrate_stream", "watch_performance_report")
    WATCH_IMAGE_FACTS_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATE_STREAM_FIELD_NUMBER: _ClassVar[int]
    WATCH_PERFORMANCE_REPORT_FIELD_NUMBER: _ClassVar[int]
    watch_image_facts: int
    orchestrate_stream: int
    watch_performance_report: int
    def __init__(self, watch_image_facts: _Optional[int] = ..., orchestrate_stream: _Optional[int] = ..., watch_performance_report: _Optional[int] = ...) -> None: ...

class DatabasePoolStats(_message.Message):
    __slots__ = ("in_use", "idle", "max")
    IN_USE_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    in_use: int
    idle: int
    max: int
    def __init__(self, in_use: _Optional[int] = ..., idle: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class PerformanceReport(_message.Message):
    __slots__ = ("generate_time", "window", "covered", "project_id", "requests", "rpc_latencies", "stage_latencies", "async_win", "context_cache", "image_facts_cache", "tokens", "jobs", "streams", "resident_memory_bytes", "database_pool", "image_analysis")
    GENERATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RPC_LATENCIES_FIELD_NUMBER: _ClassVar[int]
    STAGE_LATENCIES_FIELD_NUMBER: _ClassVar[int]
    ASYNC_WIN_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_CACHE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FACTS_CACHE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATABASE_POOL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    generate_time: _timestamp_pb2.Timestamp
    window: ReportWindow
    covered: _duration_pb2.Duration
    project_id: str
    requests: RequestStats
    rpc_latencies: _containers.RepeatedCompositeFieldContainer[LatencySummary]
    stage_latencies: _containers.RepeatedCompositeFieldContainer[LatencySummary]
    async_win: AsyncWin
    context_cache: CacheStats
    image_facts_cache: CacheStats
    tokens: TokenStats
    jobs: JobQueueStats
    streams: StreamStats
    resident_memory_bytes: int
    database_pool: DatabasePoolStats
    image_analysis: LatencySummary
    def __init__(self, generate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window: _Optional[_Union[ReportWindow, str]] = ..., covered: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., project_id: _Optional[str] = ..., requests: _Optional[_Union[RequestStats, _Mapping]] = ..., rpc_latencies: _Optional[_Iterable[_Union[LatencySummary, _Mapping]]] = ..., stage_latencies: _Optional[_Iterable[_Union[LatencySummary, _Mapping]]] = ..., async_win: _Optional[_Union[AsyncWin, _Mapping]] = ..., context_cache: _Optional[_Union[CacheStats, _Mapping]] = ..., image_facts_cache: _Optional[_Union[CacheStats, _Mapping]] = ..., tokens: _Optional[_Union[TokenStats, _Mapping]] = ..., jobs: _Optional[_Union[JobQueueStats, _Mapping]] = ..., streams: _Optional[_Union[StreamStats, _Mapping]] = ..., resident_memory_bytes: _Optional[int] = ..., database_pool: _Optional[_Union[DatabasePoolStats, _Mapping]] = ..., image_analysis: _Optional[_Union[LatencySummary, _Mapping]] = ...) -> None: ...

class GetPerformanceReportRequest(_message.Message):
    __slots__ = ("window", "project_id")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    window: ReportWindow
    project_id: str
    def __init__(self, window: _Optional[_Union[ReportWindow, str]] = ..., project_id: _Optional[str] = ...) -> None: ...

class GetPerformanceReportResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: PerformanceReport
    def __init__(self, report: _Optional[_Union[PerformanceReport, _Mapping]] = ...) -> None: ...

class WatchPerformanceReportRequest(_message.Message):
    __slots__ = ("window", "project_id", "interval")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    window: ReportWindow
    project_id: str
    interval: _duration_pb2.Duration
    def __init__(self, window: _Optional[_Union[ReportWindow, str]] = ..., project_id: _Optional[str] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WatchPerformanceReportResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: PerformanceReport
    def __init__(self, report: _Optional[_Union[PerformanceReport, _Mapping]] = ...) -> None: ...
