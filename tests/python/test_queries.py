"""Queries with the official RavenDB Python client (ravendb==7.2.7) against CORVID_URL: every
filter form of ``session.query``, typed ordering, projections, includes, paging, statistics, raw
RQL and streaming. Each test seeds its own database (see conftest.py) and checks the values that
come back.
"""

from __future__ import annotations

import pytest
from ravendb.documents.session.misc import OrderingType
from ravendb.documents.session.query import QueryStatistics


class Person:
    def __init__(self, name=None, age=None, tags=None, city=None, friend=None, bio=None):
        self.name = name
        self.age = age
        self.tags = tags
        self.city = city
        self.friend = friend
        self.bio = bio


class NameOnly:
    def __init__(self, name=None):
        self.name = name


PEOPLE = {
    "people/1": Person("Ann", 30, ["a", "b"], "Oslo", "people/2", "Likes hiking and Rust"),
    "people/2": Person("Bob", 7, ["b"], "Bergen", "people/3", "Sails"),
    "people/3": Person("Carl", 55, [], "Oslo", None, "Hikes on weekends"),
    "people/4": Person("Dora", 120, ["a", "c"], None, "people/404", None),
}


@pytest.fixture
def people(store):
    with store.open_session() as session:
        for key, person in PEOPLE.items():
            session.store(person, key)
        session.save_changes()
    return store


def names(results):
    return [person.name for person in results]


def query(session):
    return session.query(object_type=Person)


def test_filters(people):
    with people.open_session() as s:
        assert names(query(s).where_equals("name", "ann")) == ["Ann"]
        assert names(query(s).where_equals("name", "ann", exact=True)) == []
        assert names(query(s).where_equals("name", "Ann", exact=True)) == ["Ann"]
        assert names(query(s).where_greater_than("age", 30)) == ["Carl", "Dora"]
        assert names(query(s).where_greater_than_or_equal("age", 30)) == ["Ann", "Carl", "Dora"]
        assert names(query(s).where_less_than("age", 30)) == ["Bob"]
        assert names(query(s).where_between("age", 7, 55)) == ["Ann", "Bob", "Carl"]
        assert names(query(s).where_in("name", ["Bob", "dora", "Zed"])) == ["Bob", "Dora"]
        assert names(query(s).contains_all("tags", ["a", "b"])) == ["Ann"]
        assert names(query(s).contains_any("tags", ["c", "b"])) == ["Ann", "Bob", "Dora"]
        assert names(query(s).where_starts_with("name", "c")) == ["Carl"]
        assert names(query(s).where_ends_with("name", "RA")) == ["Dora"]
        assert names(query(s).where_exists("city")) == ["Ann", "Bob", "Carl", "Dora"]
        assert names(query(s).where_not_equals("city", "oslo")) == ["Bob", "Dora"]
        assert names(query(s).search("bio", "hik*")) == ["Ann", "Carl"]
        assert names(query(s).search("bio", "sails rust")) == ["Ann", "Bob"]
        assert names(query(s).where_equals("city", "Oslo").and_also().where_greater_than("age", 40)) == ["Carl"]
        assert names(query(s).where_equals("name", "Ann").or_else().where_equals("name", "Bob")) == ["Ann", "Bob"]
        assert names(query(s).not_().where_equals("city", "Oslo")) == ["Bob", "Dora"]
        assert (
            names(
                query(s)
                .open_subclause()
                .where_equals("name", "Ann")
                .or_else()
                .where_less_than("age", 10)
                .close_subclause()
                .and_also()
                .not_()
                .where_equals("city", "Bergen")
            )
            == ["Ann"]
        )
        assert names(s.query_collection("People", Person).where_equals("name", "Bob")) == ["Bob"]


def test_ordering_typed(people):
    with people.open_session() as s:
        # As text "120" < "30" < "55" < "7"; as long, numerically.
        assert names(query(s).order_by("age")) == ["Dora", "Ann", "Carl", "Bob"]
        assert names(query(s).order_by("age", OrderingType.LONG)) == ["Bob", "Ann", "Carl", "Dora"]
        assert names(query(s).order_by_descending("age", OrderingType.LONG)) == ["Dora", "Carl", "Ann", "Bob"]
        assert names(query(s).order_by("city").order_by_descending("name")) == ["Dora", "Bob", "Carl", "Ann"]


def test_projection_include_and_paging(people):
    with people.open_session() as s:
        projected = list(query(s).where_equals("city", "Oslo").select_fields(NameOnly, "name"))
        assert [(type(it), it.name) for it in projected] == [(NameOnly, "Ann"), (NameOnly, "Carl")]

        found = list(query(s).where_equals("name", "Ann").include("friend"))
        assert names(found) == ["Ann"]
        requests = s.advanced.number_of_requests
        friend = s.load("people/2", Person)
        assert friend.name == "Bob"
        assert s.advanced.number_of_requests == requests, "the include spared a request"

        ordered = query(s).order_by("name")
        assert names(ordered.skip(1).take(2)) == ["Bob", "Carl"]
        assert names(query(s).order_by("name").take(1)) == ["Ann"]
        assert names(query(s).order_by("name").skip(3)) == ["Dora"]
        assert query(s).order_by("name").first().name == "Ann"
        assert query(s).where_equals("name", "Carl").single().name == "Carl"
        with pytest.raises(Exception):
            query(s).where_equals("city", "Oslo").single()
        # The Python client has no `any()`; `take(0)` with the total is what it would send.
        assert query(s).where_equals("name", "Bob").count() == 1
        assert query(s).where_equals("name", "Zed").count() == 0
        assert query(s).count() == 4
        assert query(s).where_greater_than("age", 20).count() == 3


def test_statistics(people):
    captured = []
    with people.open_session() as s:
        results = list(
            query(s).where_greater_than("age", 10).statistics(captured.append).order_by("name").take(1)
        )
        assert names(results) == ["Ann"]
        stats: QueryStatistics = captured[0]
        assert stats.total_results == 3
        assert stats.is_stale is False
        # Field names as the query writes them, sorted ordinally, as RavenDB names auto indexes.
        assert stats.index_name == "Auto/People/ByageAndname"
        captured.clear()
        list(query(s).statistics(captured.append))
        assert captured[0].index_name == "collection/People"


def test_raw_query(people):
    with people.open_session() as s:
        raw = s.advanced.raw_query(
            "from People where age between $low and $high order by age as long desc", Person
        ).add_parameter("low", 10).add_parameter("high", 100)
        assert names(raw) == ["Carl", "Ann"]
        with pytest.raises(Exception) as error:
            list(s.advanced.raw_query("from People where age >", Person))
        assert "1:24" in str(error.value)


def test_stream(people):
    with people.open_session() as s:
        streamed = list(s.advanced.stream(query(s).where_greater_than("age", 10).order_by("age", OrderingType.LONG)))
        assert [it.document.name for it in streamed] == ["Ann", "Carl", "Dora"]
        assert streamed[0].key == "people/1"

        raw = s.advanced.raw_query("from People where name = 'Bob'", Person)
        assert [it.document.age for it in s.advanced.stream(raw)] == [7]

        by_prefix = list(s.advanced.stream_starting_with("people/", object_type=Person))
        assert sorted(it.document.name for it in by_prefix) == ["Ann", "Bob", "Carl", "Dora"]
        # The 7.2.7 client builds `start` and `pageSize` wrongly (an int joined into the URL,
        # `pageSize=<prefix>`), so page with `start_after` and filter with `matches`.
        after = list(s.advanced.stream_starting_with("people/", start_after="people/2", object_type=Person))
        assert [it.key for it in after] == ["people/3", "people/4"]
        matching = list(s.advanced.stream_starting_with("people/", matches="1|4", object_type=Person))
        assert [it.key for it in matching] == ["people/1", "people/4"]
