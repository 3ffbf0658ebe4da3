"""The kitchen service's value of a key "now", for assertions: it changes every minute, so a
value fetched a moment ago may be the previous minute's — either one counts."""
import time

from palette.examples.kitchen import answer


class AnyOf:
    def __init__(self, *values):
        self.values = set(values)

    def __eq__(self, other):
        return other in self.values

    def __hash__(self):
        return 0

    def __repr__(self):
        return f"AnyOf{sorted(self.values, key=repr)}"


def recent(r_id: str, field: str = "minutes"):
    now = time.time()
    return AnyOf(*(float(answer(r_id, t)["queue"][field]) for t in (now - 10, now)))


def recent_pair(r_id: str):
    now = time.time()
    return AnyOf(*((answer(r_id, t)["queue"]["minutes"], float(answer(r_id, t)["queue"]["orders"]))
                   for t in (now - 10, now)))
