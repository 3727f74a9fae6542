"""The one parsing helper every handler uses: bounded whole numbers, known words, short printable
ids, and JSON objects of the expected shape; each refusal is a 400 with the reason."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from vigil.web.params import check_id, one_of, query_id, query_int, whole_number


def get(query: str) -> web.Request:
    return make_mocked_request("GET", f"/api/x?{query}")


@pytest.mark.parametrize("value", ["abc", "-1", "1e9", "0", "1001", "9" * 40, "1.5", " 7", "1_000", "\u0661\u0662", "+3"])
def test_a_bounded_whole_number_refuses_everything_but_ascii_digits_in_range(value):
    with pytest.raises(web.HTTPBadRequest) as refused:
        whole_number(value, "limit", low=1, high=1000)
    assert "limit must be a whole number from 1 to 1000" in refused.value.text


def test_a_bounded_whole_number_takes_good_values_and_defaults_when_absent():
    assert whole_number("1000", "limit", low=1, high=1000) == 1000
    assert query_int(get("limit="), "limit", default=100) == 100 and query_int(get(""), "limit", default=7) == 7
    assert query_int(get("limit=25"), "limit", default=100) == 25


def test_one_of_names_the_allowed_words():
    assert one_of(get("state=open"), "state", ("open", "resolved")) == "open"
    assert one_of(get("state="), "state", ("open",)) is None
    with pytest.raises(web.HTTPBadRequest) as refused:
        one_of(get("state=lost"), "state", ("open", "resolved"))
    assert refused.value.text == "state must be one of open, resolved, not 'lost'"


@pytest.mark.parametrize(("value", "reason"), [("x" * 129, "too long"), ("a\x00b", "cannot have"),
                                                ("a\u202eb", "cannot have"), ("\udcff", "cannot have"),
                                                ("a\nb", "cannot have")])
def test_an_id_must_be_short_and_printable(value, reason):
    with pytest.raises(web.HTTPBadRequest) as refused:
        check_id(value, "ident")
    assert reason in refused.value.text
    refused.value.text.encode("utf-8")  # the reason itself can always be sent


def test_query_ids_are_optional_unless_required():
    assert query_id(get("patient_id=pt-1"), "patient_id") == "pt-1"
    assert query_id(get("patient_id=%20"), "patient_id") is None
    with pytest.raises(web.HTTPBadRequest) as refused:
        query_id(get(""), "inbox", required=True)
    assert refused.value.text == "inbox is required"
