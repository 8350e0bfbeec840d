"""Python client for brain.

>>> from brain_client import BrainClient
>>> with BrainClient("127.0.0.1:50051", api_key="brk_...") as brain:   # doctest: +SKIP
...     project = brain.create_project("Launch video")

``BrainClient`` is synchronous, ``AsyncBrainClient`` its asyncio twin. Both
apply a default deadline to unary calls, retry idempotent calls with backoff
on transient failures, raise ``BrainError`` (with the server's ErrorInfo
``reason`` and ``field``), and offer ``watch_image_facts``, which resumes from
its last cursor across disconnects. The generated messages and stubs are in
``brain_client.v1`` (``from brain_client.v1 import project_pb2, project_service_pb2``).
"""

from ._aio import AsyncBrainClient, AsyncImageFactsWatch
from ._client import BrainClient, ImageFactsWatch
from ._common import DEFAULT_TIMEOUT, image
from ._errors import ERROR_DOMAIN, BrainError
from ._retry import WATCH_BACKOFF, RetryPolicy

__all__ = [
    "AsyncBrainClient",
    "AsyncImageFactsWatch",
    "BrainClient",
    "BrainError",
    "DEFAULT_TIMEOUT",
    "ERROR_DOMAIN",
    "ImageFactsWatch",
    "RetryPolicy",
    "WATCH_BACKOFF",
    "image",
]

__version__ = "0.1.0"
