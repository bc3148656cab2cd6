"""The server behind `flashapp serve`: a connection whose response a request's thread is sending is not polled
for writing, so waitress's main thread waits instead of spinning; and responses still arrive whole."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest
from waitress import wasyncore
from waitress.channel import HTTPChannel

from flashapp import serving

BIG = 6 * 1024 * 1024  # more than a loopback socket's buffers hold, so the sending thread meets a full socket


def hello(environ, start_response):
    if environ["PATH_INFO"] == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(BIG))])
        return (bytes([number % 251]) * (BIG // 16) for number in range(16))
    if environ["PATH_INFO"] == "/kind":  # the class of the connection serving this request
        body = type(environ["waitress.client_disconnected"].__self__).__name__.encode()
    else:
        body = f"hello {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server():
    sockets: dict = {}
    created = serving.create(hello, sockets, host="127.0.0.1", port=0, threads=3, asyncore_use_poll=True)
    loop = threading.Thread(target=created.run, daemon=True)
    loop.start()
    yield created
    created.task_dispatcher.shutdown()
    wasyncore.close_all(sockets)
    loop.join(timeout=10)


@pytest.fixture
def a_connection(server):
    """Make a connection of `server` over one end of a socket pair, with a request running and output pending."""
    made = []

    def make(channel_class):
        ours, theirs = socket.socketpair()
        connection = channel_class(server, ours, ("127.0.0.1", 1), server.adj, map={})
        made.append((connection, theirs))
        connection.requests = [object()]
        connection.outbufs[-1].append(b"HTTP/1.1 200 OK\r\n")
        connection.total_outbufs_len = len(b"HTTP/1.1 200 OK\r\n")
        return connection

    yield make
    for connection, theirs in made:
        connection.close()
        theirs.close()


def held_by_another_thread(lock):
    """Hold `lock` in a thread of its own (it is re-entrant, so this thread could always take it)."""
    taken, done = threading.Event(), threading.Event()

    def hold():
        with lock:
            taken.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    return done, thread


def test_a_connection_being_sent_through_by_its_request_thread_is_not_polled_for_writing(a_connection):
    stock = a_connection(HTTPChannel)
    ours = a_connection(serving.Connection)
    for connection in (stock, ours):
        assert connection.writable()
    done, thread = held_by_another_thread(stock.outbuf_lock)
    # Waitress's own connection asks to be written while it may not be: the main loop would spin on it.
    assert stock.writable()
    done.set()
    thread.join()
    done, thread = held_by_another_thread(ours.outbuf_lock)
    assert not ours.writable()
    # With no request running, the main thread sends without the lock: still writable.
    ours.requests = []
    assert ours.writable()
    ours.requests = [object()]
    done.set()
    thread.join()
    assert ours.writable()


def test_the_server_makes_its_connections_of_the_corrected_kind(server):
    connection = http.client.HTTPConnection(*server.getsockname(), timeout=10)
    connection.request("GET", "/kind")
    assert connection.getresponse().read() == serving.Connection.__name__.encode()
    connection.close()


def test_many_requests_at_once_and_a_large_response_to_a_slow_reader_arrive_whole(server):
    address = server.getsockname()
    failures: list[str] = []

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(*address, timeout=20)
        for request in range(40):
            connection.request("GET", f"/c{number}/r{request}")
            body = connection.getresponse().read()
            if body != f"hello /c{number}/r{request}".encode():
                failures.append(f"client {number} request {request}: {body[:40]!r}")
        connection.close()

    clients = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in clients:
        thread.start()
    slow = http.client.HTTPConnection(*address, timeout=30)
    slow.request("GET", "/big")
    response = slow.getresponse()
    received = bytearray()
    while chunk := response.read(256 * 1024):
        received += chunk
        time.sleep(0.002)
    slow.close()
    for thread in clients:
        thread.join(30)
    assert not failures
    assert len(received) == BIG
    assert received == b"".join(bytes([number % 251]) * (BIG // 16) for number in range(16))


def test_a_request_waiting_for_a_thread_is_not_logged_but_a_failing_one_is(caplog):
    import logging

    serving.configure_logging()
    queue = logging.getLogger("waitress.queue")
    with caplog.at_level(logging.NOTSET):
        queue.warning("Task queue depth is %d", 3)
        logging.getLogger("waitress").error("Unexpected exception when serving")
    messages = [record.getMessage() for record in caplog.records]
    assert "Task queue depth is 3" not in messages
    assert "Unexpected exception when serving" in messages
