"""Hand-written unit tests of the query engine: operators, updates, sort, projection and errors.

Each expectation is MongoDB's documented behaviour (links in the differential tests); these
tests pin the cases down one by one, without a server.
"""

from __future__ import annotations

from typing import Any

import pytest

from track_backends.errors import EncodingError, QueryError, UnsupportedOperatorError
from track_backends.query import (
    MATCH_ALL,
    And,
    Compare,
    ElemMatch,
    In,
    Not,
    apply_update,
    compile_query,
    parse,
    parse_projection,
    parse_sort,
    parse_update,
    predicate_for,
    project,
    sort_documents,
    upsert_seed,
)
from track_backends.query.update import Update
from track_backends.stores.memory import MemoryStore


def matches(query: dict[str, Any], doc: dict[str, Any]) -> bool:
    return compile_query(query)(doc)


def which(query: dict[str, Any], docs: dict[str, dict[str, Any]]) -> set[str]:
    pred = compile_query(query)
    return {name for name, doc in docs.items() if pred(doc)}


# -- parsing and errors ---------------------------------------------------------------------------


def test_unsupported_operator_is_a_query_error() -> None:
    assert issubclass(UnsupportedOperatorError, QueryError)
    assert issubclass(QueryError, ValueError)


@pytest.mark.parametrize(
    "query",
    [
        {"a": {"$nope": 1}},
        {"a": {"$type": "string"}},
        {"a": {"$mod": [2, 0]}},
        {"$where": "this.a == 1"},
        {"$expr": {"$eq": ["$a", 1]}},
        {"$text": {"$search": "x"}},
        {"a": {"$not": {"$nope": 1}}},
        {"a": {"$elemMatch": {"$gt": 1, "$nope": 2}}},
        {"$or": [{"a": {"$bad": 1}}]},
    ],
)
def test_unknown_operators_raise_unsupported_operator_error(query: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedOperatorError):
        parse(query)


@pytest.mark.parametrize(
    "query",
    [
        [("a", 1)],
        "a",
        {"$and": []},
        {"$or": {"a": 1}},
        {"$nor": [1]},
        {"": 1},
        {"a..b": 1},
        {"a.": 1},
        {1: 1},
        {"a": {"$gt": 1, "b": 2}},  # operators mixed with field names
        {"a": {"$in": 1}},
        {"a": {"$nin": "ab"}},
        {"a": {"$all": 1}},
        {"a": {"$exists": "yes"}},
        {"a": {"$regex": 1}},
        {"a": {"$regex": "("}},
        {"a": {"$regex": "a", "$options": "q"}},
        {"a": {"$options": "i"}},
        {"a": {"$size": -1}},
        {"a": {"$size": 1.5}},
        {"a": {"$size": "1"}},
        {"a": {"$elemMatch": 1}},
        {"a": {"$not": 1}},
        {"a": {"$not": {}}},
        {"a": {"$not": {"b": 1}}},
        {"a": {"$eq": {1, 2}}},  # a value that cannot be stored
    ],
)
def test_malformed_queries_raise_query_error(query: Any) -> None:
    with pytest.raises(QueryError):
        parse(query)


def test_parse_builds_the_documented_ast() -> None:
    assert parse(None) == MATCH_ALL and parse({}) == MATCH_ALL
    assert parse({"a": 1}) == Compare("a", "$eq", 1)
    assert parse({"a": {"$in": [1, 2]}}) == In("a", (1, 2))
    assert parse({"a": 1, "b": {"$nin": []}}) == And((Compare("a", "$eq", 1), In("b", (), negate=True)))
    assert parse({"a": {"$not": {"$gt": 1}}}) == Not("a", Compare("a", "$gt", 1))
    assert parse({"a": {"$elemMatch": {"$gt": 1}}}) == ElemMatch("a", Compare("", "$gt", 1), value_mode=True)
    assert parse({"a": {"$elemMatch": {"b": 1}}}) == ElemMatch("a", Compare("b", "$eq", 1), value_mode=False)
    assert parse({"a": {"$elemMatch": {}}}) == ElemMatch("a", MATCH_ALL, value_mode=False)
    logical = parse({"a": {"$elemMatch": {"$or": [{"b": 1}]}}})
    assert isinstance(logical, ElemMatch) and not logical.value_mode
    assert parse({"a": {"$size": 2.0}}).size == 2  # type: ignore[attr-defined]
    assert parse({"a": {"$regex": "x", "$options": "xi"}}).options == "ix"  # type: ignore[attr-defined]
    assert parse({"a": {}}) == Compare("a", "$eq", {})  # equality with the empty document


def test_compiled_predicates_tell_true_from_one() -> None:
    """Equal ASTs under Python's == (1 == 1.0 == True) must not share a compiled predicate."""
    doc_true, doc_one, doc_float = {"a": True}, {"a": 1}, {"a": 1.5}
    assert predicate_for(parse({"a": 1}))(doc_one)
    assert not predicate_for(parse({"a": True}))(doc_one)
    assert predicate_for(parse({"a": True}))(doc_true)
    assert not predicate_for(parse({"a": {"$in": [1]}}))(doc_true)
    assert predicate_for(parse({"a": {"$in": [True]}}))(doc_true)
    assert predicate_for(parse({"a": {"$gt": 1}}))(doc_float)
    assert not predicate_for(parse({"a": {"$gt": True}}))(doc_float)


# -- query semantics ----------------------------------------------------------------------------


DOCS: dict[str, dict[str, Any]] = {
    "int": {"x": 1},
    "float": {"x": 1.0},
    "true": {"x": True},
    "str": {"x": "1"},
    "null": {"x": None},
    "missing": {},
    "empty": {"x": []},
    "list": {"x": [1, 2]},
    "nested": {"x": [[1, 2]]},
    "doc": {"x": {"y": 1}},
}


def test_type_bracketing() -> None:
    assert which({"x": 1}, DOCS) == {"int", "float", "list"}
    assert which({"x": True}, DOCS) == {"true"}
    assert which({"x": "1"}, DOCS) == {"str"}
    assert which({"x": {"$gt": 0}}, DOCS) == {"int", "float", "list"}
    assert which({"x": {"$gte": "0"}}, DOCS) == {"str"}
    assert which({"x": {"$lt": True}}, DOCS) == set()
    assert which({"x": {"$gte": False}}, DOCS) == {"true"}
    assert which({"x": {"$gt": {}}}, DOCS) == {"doc"}


def test_null_and_missing() -> None:
    assert which({"x": None}, DOCS) == {"null", "missing"}
    assert which({"x": {"$ne": None}}, DOCS) == set(DOCS) - {"null", "missing"}
    assert which({"x": {"$exists": False}}, DOCS) == {"missing"}
    assert which({"x": {"$gte": None}}, DOCS) == {"null", "missing"}
    assert which({"x": {"$gt": None}}, DOCS) == set()
    assert which({"x": {"$in": [None, "1"]}}, DOCS) == {"null", "missing", "str"}
    assert which({"x": {"$nin": [1]}}, DOCS) == set(DOCS) - {"int", "float", "list"}


def test_ne_nin_and_not_match_missing_fields() -> None:
    assert matches({"x": {"$ne": 5}}, {})
    assert matches({"x": {"$nin": [5]}}, {})
    assert matches({"x": {"$not": {"$gt": 5}}}, {})
    assert matches({"x": {"$not": {"$regex": "^a"}}}, {"x": 5})
    assert not matches({"x": {"$not": {"$gt": 5}}}, {"x": 6})
    assert matches({"$nor": [{"x": 1}]}, {})


def test_arrays_match_by_element_or_as_a_whole() -> None:
    assert which({"x": [1, 2]}, DOCS) == {"list", "nested"}
    assert which({"x": [2, 1]}, DOCS) == set()
    assert which({"x": []}, DOCS) == {"empty"}
    assert which({"x": 2}, DOCS) == {"list"}  # not inside the nested array
    assert matches({"x": {"$gt": 1, "$lt": 2}}, {"x": [0, 5]})  # each bound by some element
    assert not matches({"x": {"$elemMatch": {"$gt": 1, "$lt": 2}}}, {"x": [0, 5]})
    assert matches({"x": {"$gt": [1]}}, {"x": [1, 2]})  # whole-array comparison
    assert matches({"x": {"y": 1}}, {"x": [{"y": 1}]})
    assert not matches({"x": {"y": 1}}, {"x": {"y": 1, "z": 2}})
    assert not matches({"x": {"y": 1, "z": 2}}, {"x": {"z": 2, "y": 1}})  # field order matters


def test_dotted_paths_through_arrays_of_documents() -> None:
    doc = {"a": [{"b": 1}, {"b": [2, 3]}, {"c": 4}, 5, [{"b": 9}]]}
    assert matches({"a.b": 1}, doc) and matches({"a.b": 3}, doc)
    assert not matches({"a.b": 9}, doc)  # nested arrays are not entered
    assert matches({"a.b": None}, doc)  # the element {"c": 4} lacks b
    assert matches({"a.b": {"$exists": True}}, doc)
    assert not matches({"a.b": {"$exists": False}}, doc)
    assert matches({"a.b": {"$size": 2}}, doc)
    assert not matches({"a.b": None}, {"a": []})  # an empty array reaches nothing
    assert not matches({"a.b": None}, {"a": [1, 2]})
    assert matches({"a.b": {"$ne": None}}, {"a": []})
    assert matches({"a.b": {"$exists": False}}, {"a": [1]})
    assert matches({"a.b": None}, {"a": 5})  # a scalar in the way: missing


def test_numeric_path_parts() -> None:
    assert matches({"a.0": 1}, {"a": [1, 2]})
    assert matches({"a.1": None}, {"a": [1]})  # past the end: missing
    assert matches({"a.0.b": 1}, {"a": [{"b": 1}]})
    assert matches({"a.0": 7}, {"a": [{"0": 7}]})  # also a field name of element documents
    assert matches({"a.0": 7}, {"a": {"0": 7}})
    # An array reached by an index is matched whole, not by membership.
    assert not matches({"a.0": 1}, {"a": [[1, 2]]})
    assert matches({"a.0": [1, 2]}, {"a": [[1, 2]]})
    assert matches({"a.0": {"$size": 2}}, {"a": [[1, 2]]})
    assert matches({"a.0": {"$elemMatch": {"$eq": 2}}}, {"a": [[1, 2]]})
    assert matches({"a.0.1": 2}, {"a": [[1, 2]]})
    assert not matches({"a.0": {"$gt": 1}}, {"a": [[5]]})
    assert matches({"a.0": {"$gt": [1]}}, {"a": [[5]]})


def test_in_all_and_size() -> None:
    assert matches({"x": {"$in": [[1, 2]]}}, {"x": [1, 2]})
    assert not matches({"x": {"$in": []}}, {"x": 1})
    assert matches({"x": {"$nin": []}}, {"x": 1})
    assert matches({"x": {"$all": [1, 2]}}, {"x": [2, 3, 1]})
    assert not matches({"x": {"$all": [1, 4]}}, {"x": [2, 3, 1]})
    assert matches({"x": {"$all": [1]}}, {"x": 1})
    assert not matches({"x": {"$all": []}}, {"x": [1]})
    assert matches({"x": {"$all": [[1, 2]]}}, {"x": [1, 2]})  # the field equals the nested array
    assert matches({"x": {"$all": [[1, 2]]}}, {"x": [[1, 2], 3]})  # or contains it
    assert matches({"x": {"$all": [None]}}, {})  # $all is an $and of equalities
    assert matches({"a.b": {"$all": [1, 2]}}, {"a": [{"b": 1}, {"b": 2}]})
    assert matches({"x": {"$size": 0}}, {"x": []})
    assert not matches({"x": {"$size": 1}}, {"x": 1})
    assert not matches({"x": {"$size": 1}}, {"x": {"y": 1}})
    assert not matches({"x": {"$size": 2}}, {"x": [[1, 2]]})


def test_regex() -> None:
    assert matches({"s": {"$regex": "^ap"}}, {"s": "apple"})
    assert not matches({"s": {"$regex": "^AP"}}, {"s": "apple"})
    assert matches({"s": {"$regex": "^AP", "$options": "i"}}, {"s": "apple"})
    assert matches({"s": {"$regex": "b$"}}, {"s": ["x", "ab"]})
    assert not matches({"s": {"$regex": "1"}}, {"s": 1})
    assert matches({"s": {"$regex": "^b", "$options": "m"}}, {"s": "a\nb"})
    assert matches({"s": {"$not": {"$regex": "^a"}}}, {})


def test_elem_match() -> None:
    assert matches({"a": {"$elemMatch": {"b": 1, "c": 2}}}, {"a": [{"b": 1, "c": 2}]})
    assert not matches({"a": {"$elemMatch": {"b": 1, "c": 2}}}, {"a": [{"b": 1}, {"c": 2}]})
    assert matches({"a.b": 1, "a.c": 2}, {"a": [{"b": 1}, {"c": 2}]})
    # Value mode: the element is matched as a whole value, never by membership.
    assert not matches({"a": {"$elemMatch": {"$gt": 1}}}, {"a": [[5]]})
    assert matches({"a": {"$elemMatch": {"$ne": 5}}}, {"a": [[5]]})
    assert matches({"a": {"$elemMatch": {"$size": 1}}}, {"a": [[5]]})
    assert matches({"a": {"$elemMatch": {"$elemMatch": {"$gt": 1}}}}, {"a": [[5]]})
    # Query mode: only elements that are documents.
    assert not matches({"a": {"$elemMatch": {"b": None}}}, {"a": [1, "x"]})
    assert not matches({"a": {"$elemMatch": {"b": 1}}}, {"a": [[{"b": 1}]]})
    assert matches({"a": {"$elemMatch": {"b": None}}}, {"a": [1, {}]})
    assert matches({"a": {"$elemMatch": {"$or": [{"b": 1}, {"c": 1}]}}}, {"a": [{"c": 1}]})
    assert matches({"a": {"$elemMatch": {}}}, {"a": [1, [2]]})
    assert not matches({"a": {"$elemMatch": {}}}, {"a": [1, 2]})
    assert not matches({"a": {"$elemMatch": {"$gt": 0}}}, {"a": 5})  # not an array
    assert not matches({"a": {"$elemMatch": {"$gt": 0}}}, {})


def test_logical_operators() -> None:
    doc = {"a": 1, "b": 2}
    assert matches({"$and": [{"a": 1}, {"b": 2}]}, doc)
    assert matches({"$or": [{"a": 2}, {"b": 2}]}, doc)
    assert not matches({"$nor": [{"a": 2}, {"b": 2}]}, doc)
    assert matches({"$and": [{"$or": [{"a": 1}]}, {"$nor": [{"c": 1}]}]}, doc)
    assert matches({"a": {"$gte": 1, "$lte": 1}, "b": {"$in": [2]}}, doc)


# -- sort -------------------------------------------------------------------------------------------


def order(docs: list[dict[str, Any]], spec: Any) -> list[str]:
    return [d["uid"] for d in sort_documents(list(docs), parse_sort(spec))]


def test_sort_follows_the_bson_type_order() -> None:
    docs = [
        {"uid": "bool", "v": False},
        {"uid": "arr", "v": [[1]]},
        {"uid": "doc", "v": {"a": 1}},
        {"uid": "str", "v": "a"},
        {"uid": "num", "v": 5},
        {"uid": "float", "v": 2.5},
        {"uid": "null", "v": None},
        {"uid": "missing"},
        {"uid": "empty", "v": []},
    ]
    assert order(docs, [("v", 1), ("uid", 1)]) == [
        "empty",  # an empty array sorts below null
        "missing",
        "null",
        "float",
        "num",
        "str",
        "doc",
        "arr",  # [[1]] sorts by its element [1], an array
        "bool",
    ]
    assert order(docs, [("v", -1), ("uid", 1)]) == [
        "bool",
        "arr",
        "doc",
        "str",
        "num",
        "float",
        "missing",
        "null",
        "empty",
    ]


def test_sort_arrays_by_min_ascending_and_max_descending() -> None:
    docs = [{"uid": "a", "v": [1, 10]}, {"uid": "b", "v": 5}, {"uid": "c", "v": [3, 4]}]
    assert order(docs, {"v": 1}) == ["a", "c", "b"]
    assert order(docs, {"v": -1}) == ["a", "b", "c"]


def test_sort_paths_through_arrays_and_indexes() -> None:
    docs = [
        {"uid": "a", "v": [{"k": 3}, {}]},  # an element without the field contributes nothing
        {"uid": "b", "v": [{"k": 2}]},
        {"uid": "c", "v": []},
        {"uid": "d", "v": [[0], 9]},
    ]
    assert order(docs, [("v.k", 1), ("uid", 1)]) == ["c", "d", "b", "a"]
    # v.0 is a document for a and b, nothing (null) for c, and the array [0] for d (reached by an index)
    assert order(docs, [("v.0", 1), ("uid", 1)]) == ["c", "b", "a", "d"]


def test_sort_is_stable_and_multi_key() -> None:
    docs = [{"uid": str(i), "a": i % 2, "b": -i} for i in range(6)]
    assert order(docs, [("a", 1), ("b", -1)]) == ["0", "2", "4", "1", "3", "5"]
    assert order(docs, "a") == ["0", "2", "4", "1", "3", "5"]
    assert order(docs, None) == [str(i) for i in range(6)]


@pytest.mark.parametrize("spec", [{"a": 2}, {"a": True}, [("a",)], 5, {"$a": 1}, {"": 1}])
def test_bad_sorts(spec: Any) -> None:
    with pytest.raises(QueryError):
        parse_sort(spec)


# -- projection -------------------------------------------------------------------------------------


DOC = {"uid": "u", "b": 1, "a": {"y": 1, "x": 2}, "arr": [{"k": 1, "v": 2}, 3, [{"k": 4}], {"v": 5}], "s": "t"}


def proj(projection: Any, doc: dict[str, Any] = DOC) -> dict[str, Any]:
    import copy

    return project(copy.deepcopy(doc), parse_projection(projection))


def test_inclusion_keeps_document_order_and_uid() -> None:
    assert list(proj({"s": 1, "b": 1})) == ["uid", "b", "s"]
    assert proj({"a.x": 1, "uid": 0}) == {"a": {"x": 2}}
    assert list(proj({"a.x": 1, "a.y": 1})["a"]) == ["y", "x"]
    assert proj({"arr.k": 1}) == {"uid": "u", "arr": [{"k": 1}, [{"k": 4}], {}]}
    assert proj({"s.x": 1}) == {"uid": "u"}
    assert proj(["b"]) == {"uid": "u", "b": 1}
    assert proj({"uid": 1}) == {"uid": "u"}
    assert proj({"nope": 1}) == {"uid": "u"}


def test_exclusion() -> None:
    assert proj({"a": 0, "arr": 0, "uid": 0}) == {"b": 1, "s": "t"}
    assert proj({"arr.k": 0})["arr"] == [{"v": 2}, 3, [{}], {"v": 5}]
    assert proj({"uid": 0}) == {k: v for k, v in DOC.items() if k != "uid"}


def test_empty_projection_returns_whole_documents() -> None:
    assert parse_projection({}) is None and parse_projection([]) is None and parse_projection(None) is None


@pytest.mark.parametrize(
    "projection",
    [{"a": 1, "b": 0}, {"a": 1, "a.x": 1}, {"a.x": 0, "a": 0}, {"a": 2}, {"$a": 1}, {"a..b": 1}, "a", 5],
)
def test_bad_projections(projection: Any) -> None:
    with pytest.raises(QueryError):
        parse_projection(projection)


# -- updates ----------------------------------------------------------------------------------------


def updated(doc: dict[str, Any], update: dict[str, Any], *, inserting: bool = False) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(doc)
    apply_update(out, parse_update(update), inserting=inserting)
    return out


def test_set_and_unset_keep_siblings() -> None:
    doc = {"uid": "u", "m": {"x": 1, "y": 2}}
    assert updated(doc, {"$set": {"m.x": 5}}) == {"uid": "u", "m": {"x": 5, "y": 2}}
    assert updated(doc, {"$set": {"m.z.w": 1}}) == {"uid": "u", "m": {"x": 1, "y": 2, "z": {"w": 1}}}
    assert updated(doc, {"$unset": {"m.x": ""}}) == {"uid": "u", "m": {"y": 2}}
    assert updated(doc, {"$unset": {"m.q": "", "nope.deep": ""}}) == doc
    assert updated(doc, {"$set": {"m": 3}}) == {"uid": "u", "m": 3}


def test_numeric_paths_index_arrays() -> None:
    doc = {"l": [1, {"k": 1}]}
    assert updated(doc, {"$set": {"l.0": 9}}) == {"l": [9, {"k": 1}]}
    assert updated(doc, {"$set": {"l.1.k": 2}}) == {"l": [1, {"k": 2}]}
    assert updated(doc, {"$set": {"l.4": 7}}) == {"l": [1, {"k": 1}, None, None, 7]}
    assert updated(doc, {"$set": {"l.3.k": 7}}) == {"l": [1, {"k": 1}, None, {"k": 7}]}
    assert updated(doc, {"$unset": {"l.0": ""}}) == {"l": [None, {"k": 1}]}
    assert updated(doc, {"$unset": {"l.9": "", "l.x": ""}}) == doc
    assert updated({}, {"$set": {"l.1": 1}}) == {"l": {"1": 1}}  # a missing field becomes a document


def test_inc() -> None:
    assert updated({"n": 1}, {"$inc": {"n": 2}}) == {"n": 3}
    out = updated({"n": 1}, {"$inc": {"n": 0.5}})
    assert out == {"n": 1.5} and type(out["n"]) is float
    assert updated({}, {"$inc": {"a.b": -1}}) == {"a": {"b": -1}}
    with pytest.raises(QueryError):
        updated({"n": 2**63 - 1}, {"$inc": {"n": 1}})
    with pytest.raises(QueryError):
        updated({"n": True}, {"$inc": {"n": 1}})


def test_push_and_add_to_set() -> None:
    assert updated({}, {"$push": {"l": 1}}) == {"l": [1]}
    assert updated({"l": [1]}, {"$push": {"l": {"$each": [1, [2]]}}}) == {"l": [1, 1, [2]]}
    assert updated({}, {"$push": {"l": {"$each": []}}}) == {"l": []}
    assert updated({"l": [1, {"a": 1}]}, {"$addToSet": {"l": {"$each": [1.0, True, {"a": 1}, 2, 2]}}}) == {
        "l": [1, {"a": 1}, True, 2]
    }
    assert updated({"l": [[1]]}, {"$addToSet": {"l": [1]}}) == {"l": [[1]]}
    assert updated({"l": [0, 1]}, {"$push": {"l.5": "x"}}) == {"l": [0, 1, None, None, None, ["x"]]}


def test_set_on_insert() -> None:
    assert updated({}, {"$setOnInsert": {"a": 1}, "$set": {"b": 2}}) == {"b": 2}
    assert updated({}, {"$setOnInsert": {"a": 1}, "$set": {"b": 2}}, inserting=True) == {"a": 1, "b": 2}


def test_new_fields_are_created_in_lexicographic_order() -> None:
    """MongoDB 5.0+ applies update fields in lexicographic order (numeric names numerically)."""
    out = updated({"uid": "u", "m": {"y": 0}}, {"$set": {"z": 1, "b": 1, "m.x": 1, "m.a": 1}, "$inc": {"c": 1}})
    assert list(out) == ["uid", "m", "b", "c", "z"]
    assert list(out["m"]) == ["y", "a", "x"]
    assert list(updated({}, {"$set": {"l.10": 1, "l.9": 1, "l.x": 1}})["l"]) == ["9", "10", "x"]
    upd = parse_update({"$set": {"z": 1, "b": 1}})
    assert [p for _, p, _ in Update.from_record(upd.to_record()).ops] == [("b",), ("z",)]


def test_empty_operand_is_a_no_op() -> None:
    assert updated({"a": 1}, {"$set": {}}) == {"a": 1}


@pytest.mark.parametrize(
    ("doc", "update"),
    [
        ({"m": None}, {"$set": {"m.x": 1}}),  # null in the way is not a missing field
        ({"l": [None]}, {"$set": {"l.0.x": 1}}),
        ({"s": "t"}, {"$set": {"s.x": 1}}),
        ({"l": [1]}, {"$set": {"l.x": 1}}),  # an array addressed by a field name
        ({"l": [None]}, {"$push": {"l.0": 1}}),  # $push onto null
        ({"s": "t"}, {"$push": {"s": 1}}),
        ({"d": {}}, {"$addToSet": {"d": 1}}),
        ({"n": None}, {"$inc": {"n": 1}}),
        ({"n": "1"}, {"$inc": {"n": 1}}),
    ],
)
def test_updates_that_do_not_fit_the_document(doc: dict[str, Any], update: dict[str, Any]) -> None:
    with pytest.raises(QueryError):
        updated(doc, update)


@pytest.mark.parametrize(
    "update",
    [
        {},
        {"a": 1},  # a replacement document, not operators
        [("$set", {"a": 1})],
        {"$set": 1},
        {"$set": {"": 1}},
        {"$set": {"a..b": 1}},
        {"$set": {"a.$b": 1}},
        {"$set": {"uid": "x"}},
        {"$unset": {"uid.x": ""}},
        {"$set": {"a": 1}, "$inc": {"a": 1}},
        {"$set": {"a": 1, "a.b": 1}},
        {"$set": {"a.b": 1}, "$unset": {"a": ""}},
        {"$inc": {"a": "1"}},
        {"$inc": {"a": True}},
        {"$push": {"a": {"$each": 1}}},
    ],
)
def test_malformed_updates_raise_query_error(update: Any) -> None:
    with pytest.raises(QueryError):
        parse_update(update)


@pytest.mark.parametrize(
    "update",
    [{"$rename": {"a": "b"}}, {"$pull": {"a": 1}}, {"$push": {"a": {"$each": [1], "$slice": 1}}}, {"$mul": {"a": 2}}],
)
def test_unsupported_update_operators(update: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedOperatorError):
        parse_update(update)


def test_update_values_must_be_storable() -> None:
    with pytest.raises(EncodingError):
        parse_update({"$set": {"a": {1, 2}}})
    with pytest.raises(EncodingError):
        parse_update({"$set": {"a": {"$b": 1}}})


def test_upsert_seed_takes_equalities_in_path_order() -> None:
    seed = upsert_seed(parse({"uid": "u", "z": 1, "m.x": {"$eq": 2}, "$and": [{"b": None}], "q": {"$in": [3]}}))
    assert seed == {"b": None, "m": {"x": 2}, "q": 3, "uid": "u", "z": 1}
    assert list(seed) == ["b", "m", "q", "uid", "z"]
    assert upsert_seed(parse({"a": {"$gt": 1}, "b": {"$in": [1, 2]}, "$or": [{"c": 1}]})) == {}


def test_upsert_through_the_memory_store() -> None:
    store = MemoryStore()
    assert store.update("c", {"uid": "u", "k.x": 1}, {"$set": {"v": 1}, "$setOnInsert": {"a": 0}}, upsert=True) == 1
    assert store.find("c") == [{"k": {"x": 1}, "uid": "u", "a": 0, "v": 1}]
    assert store.update("c", {"uid": "u"}, {"$set": {"v": 2}, "$setOnInsert": {"a": 5}}, upsert=True) == 1
    assert store.find("c", {"uid": "u"}, projection={"a": 1, "v": 1, "uid": 0}) == [{"a": 0, "v": 2}]
