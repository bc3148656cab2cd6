"""A streamed download gives way, between two chunks, to the other requests in flight, and never waits long.

`InFlight` counts every request from its first request hook until its teardown (a download until its
view hands over the stream); a download's next chunk is made once no request is in flight, or after
`GIVE_WAY_SECONDS` at most. Its own counting is checked here,
and the counts of a real app after downloads read in full, left half-way, and made beside a request.
"""

from __future__ import annotations

import threading

from flashapp.web.helpers import GIVE_WAY_SECONDS, InFlight
from tests.helpers import STUDY, answer, showing


def test_a_download_waits_for_the_requests_in_flight_and_at_most_as_long_as_it_may():
    in_flight = InFlight()
    assert in_flight.give_way(0)  # nothing to wait for
    in_flight.started()  # a student's page
    assert in_flight.requests == 1
    assert not in_flight.give_way(0.001)  # waited for it, and went on when the time was up
    given: list[bool] = []
    waiting = threading.Thread(target=lambda: given.append(in_flight.give_way(60)))
    waiting.start()
    in_flight.ended()  # the page is done: the download goes on at once
    waiting.join(60)
    assert given == [True]
    assert in_flight.requests == 0


def test_the_apps_requests_are_counted_out_and_a_download_once_its_view_is_done(built_app, teacher, classroom, student):
    class_id, _ = classroom
    in_flight = built_app.extensions["flashapp.in_flight"]
    answer(student, showing(student.get(STUDY).get_data(as_text=True)), "4")
    assert teacher.get("/healthz").status_code == 200
    assert in_flight.requests == 0
    whole = teacher.get(f"/teach/classes/{class_id}/revlog.csv").get_data(as_text=True)
    assert len(whole.strip().splitlines()) == 3  # the header and the student's two answers
    assert in_flight.requests == 0

    left = teacher.get(f"/teach/classes/{class_id}/revlog.csv", buffered=False)
    next(iter(left.response))
    assert in_flight.requests == 0  # a download now, no longer a request in flight
    left.close()  # the teacher's browser went away
    assert in_flight.requests == 0

    # A request in flight all along (another thread's, here counted by hand): each chunk waits for it, at most
    # GIVE_WAY_SECONDS, and the download is whole all the same.
    assert GIVE_WAY_SECONDS <= 0.05
    in_flight.started()
    try:
        assert teacher.get(f"/teach/classes/{class_id}/revlog.csv").get_data(as_text=True) == whole
    finally:
        in_flight.ended()
    assert in_flight.requests == 0
