-- One row per normalised image reference, over all recorded time: pulls started, pulls
-- refused by a rate limit, all failed pulls, distinct clusters, first and last seen.
-- armirror pulls runs this same query with a time window added.
SELECT
  reference,
  ANY_VALUE(registry) AS registry,
  LOGICAL_OR(third_party) AS third_party,
  COUNTIF(reason = 'pulling') AS pulls,
  COUNTIF(reason = 'rate_limited') AS rate_limited,
  COUNTIF(reason IN ('failed', 'rate_limited')) AS failures,
  COUNT(DISTINCT cluster) AS clusters,
  MIN(event_time) AS first_seen,
  MAX(event_time) AS last_seen
FROM (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY insert_id, event_time ORDER BY recorded_at) AS row_number
  FROM `${project}.${dataset}.pull_events`
) AS events
WHERE row_number = 1
GROUP BY reference
