"""The PL/pgSQL helper functions that apply updates inside PostgreSQL (not on CockroachDB).

``set``, ``unset`` and ``push`` reproduce :mod:`track_backends.query.update` on encoded values
(:mod:`.jsonb`): new keys go last in the ``"$o"`` order list, indexes past an array's end pad
with nulls, a path that cannot be created raises SQLSTATE ``TB001`` (a ``QueryError``), and
NaN and the infinities are numbers, not documents (``kind``). ``inc`` (by an integer) and
``minmax`` (``$min``/``$max`` by a finite number) handle the cases whose result SQL computes
exactly: a missing field, or one holding an integer (``inc``) or a number (``minmax``).
Anything else (float arithmetic, NaN, the infinities, other types, a 64-bit overflow) raises
``TB002``, and the store applies the update in Python instead. They are created per
namespace, named ``<prefix>tb$<name>`` in the URI's schema.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

NAMES = ("kind", "put", "arrput", "set", "unset", "push", "inc", "minmax")
"""Every helper function; :mod:`.updates` calls all but ``kind``, ``put`` and ``arrput``."""

_FUNCTIONS = [
    r"""
CREATE OR REPLACE FUNCTION {kind}(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
-- jsonb_typeof, except that NaN and the infinities ({{"$n": ...}}, see .jsonb) are numbers.
SELECT CASE WHEN jsonb_typeof(v) = 'object' AND v ? '$n' THEN 'number' ELSE jsonb_typeof(v) END
$f$""",
    r"""
CREATE OR REPLACE FUNCTION {put}(obj jsonb, k text, v jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE o jsonb;
BEGIN
  IF obj ? k THEN RETURN jsonb_set(obj, ARRAY[k], v); END IF;
  o := obj -> '$o';
  IF o IS NULL THEN
    SELECT jsonb_agg(x) INTO o FROM jsonb_object_keys(obj) AS x;
    IF o IS NULL THEN RETURN jsonb_build_object(k, v); END IF;
  END IF;
  RETURN obj || jsonb_build_object(k, v, '$o', o || to_jsonb(k));
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {arrput}(arr jsonb, i int, v jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE n int := jsonb_array_length(arr);
BEGIN
  IF i < n THEN RETURN jsonb_set(arr, ARRAY[i::text], v); END IF;
  RETURN arr || COALESCE((SELECT jsonb_agg('null'::jsonb) FROM generate_series(1, i - n)), '[]'::jsonb)
             || jsonb_build_array(v);
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {set}(cur jsonb, path text[], v jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
-- update._container(create=True) + _put: missing fields become documents, indexes past the end
-- pad with nulls; null, a scalar or an array addressed by a field name in the way raise.
DECLARE k text := path[1]; t text := {kind}(cur); child jsonb; i int;
BEGIN
  IF cardinality(path) = 1 THEN
    IF t = 'object' THEN RETURN {put}(cur, k, v); END IF;
    IF t = 'array' AND k ~ '^[0-9]+$' THEN RETURN {arrput}(cur, k::int, v); END IF;
  ELSIF t = 'object' THEN
    RETURN {put}(cur, k, {set}(COALESCE(cur -> k, '{{}}'::jsonb), path[2:], v));
  ELSIF t = 'array' AND k ~ '^[0-9]+$' THEN
    i := k::int;
    RETURN {arrput}(cur, i, {set}(COALESCE(cur -> i, '{{}}'::jsonb), path[2:], v));
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'TB001',
    MESSAGE = format('cannot create field %s inside %s', k, COALESCE(t, 'nothing'));
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {unset}(cur jsonb, path text[]) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
-- update._container(create=False): a path that does not fully exist changes nothing.
DECLARE k text := path[1]; t text := {kind}(cur); child jsonb; o jsonb;
BEGIN
  IF t = 'object' THEN
    IF NOT cur ? k THEN RETURN cur; END IF;
    IF cardinality(path) > 1 THEN RETURN jsonb_set(cur, ARRAY[k], {unset}(cur -> k, path[2:])); END IF;
    o := cur -> '$o';
    cur := cur - k;
    IF o IS NOT NULL THEN
      o := o - k;
      IF jsonb_array_length(o) < 2 THEN cur := cur - '$o'; ELSE cur := jsonb_set(cur, '{{$o}}', o); END IF;
    END IF;
    RETURN cur;
  END IF;
  IF t = 'array' AND k ~ '^[0-9]+$' AND k::numeric < jsonb_array_length(cur) THEN
    IF cardinality(path) > 1 THEN RETURN jsonb_set(cur, ARRAY[k], {unset}(cur -> k::int, path[2:])); END IF;
    RETURN jsonb_set(cur, ARRAY[k], 'null'::jsonb);
  END IF;
  RETURN cur;
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {push}(cur jsonb, path text[], items jsonb, uniq boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE k text := path[1]; t text := {kind}(cur); i int; old jsonb; it jsonb;
BEGIN
  IF cardinality(path) > 1 THEN
    IF t = 'object' THEN
      RETURN {put}(cur, k, {push}(COALESCE(cur -> k, '{{}}'::jsonb), path[2:], items, uniq));
    END IF;
    IF t = 'array' AND k ~ '^[0-9]+$' THEN
      i := k::int;
      RETURN {arrput}(cur, i, {push}(COALESCE(cur -> i, '{{}}'::jsonb), path[2:], items, uniq));
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'TB001',
      MESSAGE = format('cannot create field %s inside %s', k, COALESCE(t, 'nothing'));
  END IF;
  IF t = 'object' THEN
    old := cur -> k;
  ELSIF t = 'array' AND k ~ '^[0-9]+$' THEN
    old := cur -> k::int;
  ELSE
    RAISE EXCEPTION USING ERRCODE = 'TB001',
      MESSAGE = format('cannot create field %s inside %s', k, COALESCE(t, 'nothing'));
  END IF;
  IF old IS NULL THEN
    old := '[]'::jsonb;
  ELSIF jsonb_typeof(old) <> 'array' THEN
    RAISE EXCEPTION USING ERRCODE = 'TB001',
      MESSAGE = format('cannot push onto %s: it holds %s, not an array', k, jsonb_typeof(old));
  END IF;
  IF uniq THEN
    FOR it IN SELECT value FROM jsonb_array_elements(items) WITH ORDINALITY AS e(value, n) ORDER BY n LOOP
      IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(old) AS x WHERE x = it) THEN
        old := old || jsonb_build_array(it);
      END IF;
    END LOOP;
  ELSE
    old := old || items;
  END IF;
  IF t = 'object' THEN RETURN {put}(cur, k, old); END IF;
  RETURN {arrput}(cur, k::int, old);
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {inc}(cur jsonb, path text[], v jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
-- update's $inc by an integer v: set when missing, add when the field holds an integer.
DECLARE old jsonb := cur #> path; r numeric;
BEGIN
  IF old IS NULL THEN RETURN {set}(cur, path, v); END IF;
  IF jsonb_typeof(old) = 'number' AND old::text ~ '^-?[0-9]+$' THEN
    r := old::numeric + v::numeric;
    IF r BETWEEN -9223372036854775808 AND 9223372036854775807 THEN RETURN {set}(cur, path, to_jsonb(r)); END IF;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'TB002', MESSAGE = 'this $inc is applied in Python';
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {minmax}(cur jsonb, path text[], v jsonb, lower boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $f$
-- update's $min (lower) / $max by a finite number v: set when missing, or when beyond a number.
DECLARE old jsonb := cur #> path;
BEGIN
  IF old IS NULL THEN RETURN {set}(cur, path, v); END IF;
  IF jsonb_typeof(old) = 'number' THEN
    IF (lower AND v::numeric < old::numeric) OR (NOT lower AND v::numeric > old::numeric) THEN
      RETURN {set}(cur, path, v);
    END IF;
    RETURN cur;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'TB002', MESSAGE = 'this $min/$max is applied in Python';
END $f$""",
]


def function_names(schema: str, prefix: str) -> dict[str, sql.Identifier]:
    """The qualified SQL name of each helper function of a namespace."""
    return {n: sql.Identifier(schema, f"{prefix}tb${n}") for n in NAMES}


def create_functions(conn: psycopg.Connection, schema: str, prefix: str) -> None:
    """Create (or replace) the helper functions of a namespace."""
    names = function_names(schema, prefix)
    for text in _FUNCTIONS:
        conn.execute(sql.SQL(text).format(**names))
