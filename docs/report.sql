-- Copyright (C) ngx_cef_module developers
-- SPDX-License-Identifier: BSD-2-Clause
--
-- The numbers cef-report counts, in SQL (docs/report.md, "The same numbers
-- in SQL"): per experiment x goal x metric, each arm's exposed visitors
-- `n`, `sum` and `sum_squares`; one row per test with the columns naming
-- it and `stats`, the input of `cef-report stats` (one JSON object).
--
-- Reads the table log(line TEXT): the lines of the impression and goal
-- logs, one row each, in file order (rowid).  A line is a JSON object: the
-- record in its string member "decision" or "goal" (escape=json), or the
-- bare record (escape=none).  The parameter @window is --window in seconds
-- (NULL: to the end of the data).
--
-- SQLite 3.38 or later (JSON functions, window functions); `IS` is
-- SQL's IS NOT DISTINCT FROM, json_each() a lateral JSON table
-- (PostgreSQL: jsonb_each, BigQuery: JSON_QUERY_ARRAY / UNNEST).
-- tests/integration/test_report_sql.py runs this file and checks it
-- against `cef-report --json` on the same logs.

WITH
-- every record, with the line it came from: a line's "decision" or
-- "goal" member (a string to parse again, or the object itself), or the
-- line when it is a bare record; version 1 only
record AS (
    SELECT seq, r FROM (
        SELECT rowid AS seq, line AS r FROM log
         WHERE json_valid(line) AND json_type(line, '$.v') IS NOT NULL
        UNION ALL
        SELECT rowid, json_extract(line, '$.decision') FROM log
         WHERE json_valid(line) AND json_type(line, '$.v') IS NULL
           AND json_type(line, '$.decision') IN ('text', 'object')
        UNION ALL
        SELECT rowid, json_extract(line, '$.goal') FROM log
         WHERE json_valid(line) AND json_type(line, '$.v') IS NULL
           AND json_type(line, '$.goal') IN ('text', 'object')
    ) WHERE json_valid(r) AND json_extract(r, '$.v') = 1
),

-- exposures: a slot of an impression record that bucketed the visitor
-- into an experiment and showed an offer, or held them out (control) from
-- one they would have seen
exposure AS (
    SELECT json_extract(r, '$.rules')         AS rules,
           json_extract(s.value, '$.experiment') AS experiment,
           json_extract(s.value, '$.salt')    AS salt,
           s.key                              AS slot,
           json_extract(r, '$.visitor')       AS visitor,
           json_extract(r, '$.t')             AS t,
           json_extract(s.value, '$.variant') AS arm,
           json_extract(s.value, '$.split')   AS split,
           seq
      FROM record, json_each(record.r, '$.slots') AS s
     WHERE json_type(r, '$.slots') = 'object'
       AND json_type(r, '$.visitor') = 'text'
       AND json_type(s.value, '$.experiment') = 'text'
       AND (json_type(s.value, '$.offer') = 'text'
            OR (json_extract(s.value, '$.variant') = 'control'
                AND json_type(s.value, '$.would') = 'text'))
),

-- the first exposure of each visitor to each experiment: their arm, their
-- start
first_exposure AS (
    SELECT * FROM (
        SELECT exposure.*, row_number() OVER (
                   PARTITION BY rules, experiment, salt, visitor
                   ORDER BY t, seq) AS k
          FROM exposure)
     WHERE k = 1
),

-- each experiment: the configured split of its earliest exposure
experiment AS (
    SELECT rules, experiment, salt, split FROM (
        SELECT first_exposure.*, row_number() OVER (
                   PARTITION BY rules, experiment, salt
                   ORDER BY t, seq) AS e
          FROM first_exposure)
     WHERE e = 1
),

-- its arms: those of the split (with their weights, zero visitors
-- included), then any other arm seen (weight unknown: no SRM check)
arm AS (
    SELECT e.rules, e.experiment, e.salt, a.key AS arm,
           a.value / 10000.0 AS weight, a.id AS ord
      FROM experiment AS e, json_each(e.split) AS a
    UNION ALL
    SELECT f.rules, f.experiment, f.salt, f.arm, NULL, 1e18
      FROM first_exposure AS f JOIN experiment AS e
           ON e.rules IS f.rules AND e.experiment = f.experiment
              AND e.salt IS f.salt
     WHERE f.arm NOT IN (SELECT key FROM json_each(e.split))
     GROUP BY f.rules, f.experiment, f.salt, f.arm
),

-- its control: the arm named control, else the split's first arm; and
-- whether an arm's weight is unknown
control AS (
    SELECT rules, experiment, salt,
           max(weight IS NULL) AS unweighted,
           coalesce(max(CASE WHEN arm = 'control' THEN arm END),
                    (SELECT b.arm FROM arm AS b
                      WHERE b.rules IS a.rules
                        AND b.experiment = a.experiment
                        AND b.salt IS a.salt
                      ORDER BY b.ord LIMIT 1)) AS control
      FROM arm AS a
     GROUP BY rules, experiment, salt
),

goal AS (
    SELECT json_extract(r, '$.goal')    AS goal,
           json_extract(r, '$.visitor') AS visitor,
           json_extract(r, '$.t')       AS t,
           json_extract(r, '$.value')   AS value
      FROM record
     WHERE json_type(r, '$.goal') = 'text'
       AND json_type(r, '$.visitor') = 'text'
),

-- the metrics: every goal counts converters; a goal that carries values
-- also sums them; without any goal, each experiment is still reported
-- (goal NULL: exposures and the SRM check)
metric AS (
    SELECT goal, 'binomial' AS metric FROM goal GROUP BY goal
    UNION ALL
    SELECT goal, 'mean' FROM goal GROUP BY goal HAVING count(value) > 0
    UNION ALL
    SELECT NULL, 'binomial' WHERE NOT EXISTS (SELECT 1 FROM goal)
),

-- conversions: a visitor's goal events from their first exposure on
-- (within the window), summed per visitor
converted AS (
    SELECT f.rules, f.experiment, f.salt, f.arm, f.visitor, g.goal,
           total(g.value) AS value
      FROM first_exposure AS f
           JOIN goal AS g
             ON g.visitor = f.visitor AND g.t >= f.t
                AND (@window IS NULL OR g.t <= f.t + @window)
     GROUP BY f.rules, f.experiment, f.salt, f.arm, f.visitor, g.goal
),

arm_n AS (
    SELECT rules, experiment, salt, arm, count(*) AS n
      FROM first_exposure
     GROUP BY rules, experiment, salt, arm
),

arm_goal AS (
    SELECT rules, experiment, salt, arm, goal,
           count(*) AS converters, total(value) AS value,
           total(value * value) AS value_squares
      FROM converted
     GROUP BY rules, experiment, salt, arm, goal
),

stats AS (
    SELECT a.rules, a.experiment, a.salt, m.goal, m.metric, a.arm,
           a.weight, a.ord, coalesce(n.n, 0) AS n,
           CASE m.metric WHEN 'binomial' THEN coalesce(g.converters, 0)
                         ELSE coalesce(g.value, 0) END AS sum,
           CASE m.metric WHEN 'binomial' THEN coalesce(g.converters, 0)
                         ELSE coalesce(g.value_squares, 0) END AS sum_squares
      FROM arm AS a
           CROSS JOIN metric AS m
           LEFT JOIN arm_n AS n
             ON n.rules IS a.rules AND n.experiment = a.experiment
                AND n.salt IS a.salt AND n.arm = a.arm
           LEFT JOIN arm_goal AS g
             ON g.rules IS a.rules AND g.experiment = a.experiment
                AND g.salt IS a.salt AND g.arm = a.arm AND g.goal IS m.goal
)

-- one row per test: what names it, and the input of `cef-report stats`
-- (the arms in the split's order; json_remove drops sum_squares from a
-- binomial arm and the weights of an experiment with an arm of unknown
-- weight -- '$.none' is a path that is not there)
SELECT experiment, salt, rules, goal, metric,
       json_object('metric', metric, 'control', control,
                   'arms', json(arms)) AS stats
  FROM (
    SELECT s.*, c.control,
           json_group_array(json_remove(
               json_object('name', s.arm, 'weight', s.weight, 'n', s.n,
                           'sum', s.sum, 'sum_squares', s.sum_squares),
               CASE s.metric WHEN 'binomial' THEN '$.sum_squares'
                             ELSE '$.none' END,
               CASE WHEN c.unweighted THEN '$.weight' ELSE '$.none' END))
             OVER (PARTITION BY s.rules, s.experiment, s.salt, s.goal,
                                s.metric
                   ORDER BY s.ord
                   ROWS BETWEEN UNBOUNDED PRECEDING
                            AND UNBOUNDED FOLLOWING) AS arms,
           row_number()
             OVER (PARTITION BY s.rules, s.experiment, s.salt, s.goal,
                                s.metric
                   ORDER BY s.ord) AS i
      FROM stats AS s
           JOIN control AS c
             ON c.rules IS s.rules AND c.experiment = s.experiment
                AND c.salt IS s.salt)
 WHERE i = 1
 ORDER BY rules, experiment, salt, goal, metric;
