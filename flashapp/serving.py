"""The waitress server behind `flashapp serve`, with its connections' wait for a writable socket corrected.

Waitress's main thread polls every connection, asking each whether it has output to send. A connection says
yes as soon as a request's thread has put its response in the connection's buffer, and the main thread then
tries that buffer's lock without blocking. The request's thread holds the lock while it sends the response
itself, and sending lets go of Python's interpreter lock; so the main thread, finding the lock taken, polls
again at once, and again, spinning on a socket that is writable with nothing it may write, until the request's
thread wins the interpreter lock back. Under a class's load that spin took half of the server's CPU while
students answered (measured: the main thread at 40-70 % of a core, the request threads at 55-70 %).

`Connection` says it has nothing to send while a request's thread holds the buffer: that thread sends what it
wrote, and when it cannot send everything, or when its request ends, it wakes the main thread, which then asks
again and finds the lock free.
"""

from __future__ import annotations

import logging
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server


class Connection(HTTPChannel):
    """A waitress connection that is not writable while a request's thread is sending through it."""

    def writable(self) -> bool:
        if self.requests and self.total_outbufs_len and not (self.will_close or self.close_when_flushed):
            if not self.outbuf_lock.acquire(blocking=False):
                return False
            self.outbuf_lock.release()
        return bool(super().writable())


def create(app: Any, sockets: dict[int, Any], **options: Any) -> Any:
    """A waitress server for `app` whose connections are `Connection`s, registered in `sockets` (its poll map).

    `options` are waitress's settings (host, port, threads, ...). Nothing is served until its `run()`.
    """
    server = create_server(app, map=sockets, **options)
    for listener in list(sockets.values()):
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = Connection
    return server


def serve(app: Any, **options: Any) -> None:
    """Listen and serve `app` until stopped, as `waitress.serve(app, **options)` does, on `Connection`s."""
    configure_logging()
    server = create(app, {}, **options)
    server.print_listen("Serving on http://{}:{}")
    server.run()


def configure_logging() -> None:
    """Log to the terminal as `waitress.serve` does, less waitress's line for each request that waits a moment."""
    logging.basicConfig()
    # Waitress warns "Task queue depth is N" for every request that waits for a free thread: with a class
    # answering at once that is most requests, thousands of lines a minute in the teacher's terminal. Waiting
    # a moment for a thread is normal here; writes that really wait show in /healthz ("writes: waiting").
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
