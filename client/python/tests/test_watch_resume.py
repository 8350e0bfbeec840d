"""The watch's resume logic against a stand-in WatchImageFacts server that
misbehaves on purpose: it fails mid-stream, ends a stream cleanly, and sends an
event the client already has. The live scenario proves resume against the real
server through a proxy that cuts the connection; this pins the cases a real
server cannot be made to produce on demand.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent import futures
from typing import Any, Iterator, List

import grpc
import pytest

from brain_client import AsyncBrainClient, BrainClient, BrainError, RetryPolicy
from brain_client.v1 import image_facts_pb2, image_facts_pb2_grpc

FAST = RetryPolicy(max_attempts=0, initial_backoff=0.02, max_backoff=0.2)


def _event(cursor: int) -> image_facts_pb2.WatchImageFactsResponse:
    return image_facts_pb2.WatchImageFactsResponse(
        event=image_facts_pb2.ImageFactsEvent(
            cursor=cursor,
            type=image_facts_pb2.EVENT_TYPE_IMAGE_FACTS_READY,
            project_id="p",
            image_id=f"image-{cursor}",
        )
    )


class StandIn(image_facts_pb2_grpc.ImageFactsServiceServicer):
    """A five-event log (cursors 1 to 5) served over three connections:
    1. events after the cursor up to 2, then UNAVAILABLE;
    2. event 2 again (a duplicate), then 3, then a clean end of stream;
    3. a heartbeat (latest 5), events 4 and 5, then nothing until cancelled.
    Project "forbidden" fails with NOT_FOUND (not retryable)."""

    def __init__(self) -> None:
        self.requests: List[int] = []
        self._lock = threading.Lock()

    def WatchImageFacts(self, request: Any, context: Any) -> Iterator[image_facts_pb2.WatchImageFactsResponse]:
        if request.project_id == "forbidden":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such project")
        with self._lock:
            self.requests.append(request.after_cursor)
            connection = len(self.requests)
        if connection == 1:
            for cursor in range(request.after_cursor + 1, 3):
                yield _event(cursor)
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost")
        elif connection == 2:
            yield _event(request.after_cursor)
            yield _event(3)
        else:
            yield image_facts_pb2.WatchImageFactsResponse(heartbeat=image_facts_pb2.Heartbeat(latest_cursor=5))
            yield _event(4)
            yield _event(5)
            done = threading.Event()
            context.add_callback(done.set)
            done.wait(30)


@pytest.fixture()
def stand_in() -> Iterator[tuple[str, StandIn]]:
    servicer = StandIn()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    image_facts_pb2_grpc.add_ImageFactsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def test_watch_resumes_from_its_cursor_and_never_repeats_an_event(stand_in: tuple[str, StandIn]) -> None:
    addr, servicer = stand_in
    with BrainClient(addr, watch_backoff=FAST) as client, client.watch_image_facts("p") as watch:
        cursors = [next(watch).cursor for _ in range(5)]
        assert cursors == [1, 2, 3, 4, 5], "every event once, in order"
        assert servicer.requests == [0, 2, 3], "each reconnect resumes after the last cursor"
        assert watch.reconnects == 2
        assert watch.cursor == 5
        assert watch.latest_cursor == 5, "heartbeats are consumed, not yielded"


def test_async_watch_resumes_the_same_way(stand_in: tuple[str, StandIn]) -> None:
    addr, servicer = stand_in

    async def run() -> None:
        async with AsyncBrainClient(addr, watch_backoff=FAST) as client:
            async with client.watch_image_facts("p") as watch:
                cursors = [(await asyncio.wait_for(watch.__anext__(), 10)).cursor for _ in range(5)]
                assert cursors == [1, 2, 3, 4, 5]
                assert servicer.requests == [0, 2, 3]
                assert watch.reconnects == 2
                assert watch.latest_cursor == 5

    asyncio.run(run())


def test_watch_ends_on_an_error_that_is_not_a_disconnect(stand_in: tuple[str, StandIn]) -> None:
    addr, _ = stand_in
    with BrainClient(addr) as client:
        watch = client.watch_image_facts("forbidden")
        with pytest.raises(BrainError) as caught:
            next(watch)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(StopIteration):
            next(watch)
        assert watch.reconnects == 0


def test_watch_gives_up_after_its_reconnect_budget() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bounded = RetryPolicy(max_attempts=3, initial_backoff=0.01)
    with BrainClient(f"127.0.0.1:{port}", watch_backoff=bounded) as client:
        watch = client.watch_image_facts("p", 7)
        with pytest.raises(BrainError) as caught:
            next(watch)
        assert caught.value.retryable
        assert watch.reconnects == 2, "three attempts: the first and two reconnects"
        assert watch.cursor == 7, "the cursor is kept for a later resume"
