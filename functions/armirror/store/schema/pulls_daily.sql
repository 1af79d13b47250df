-- Pulls per UTC day split by registry class (artifact_registry, container_registry,
-- third_party): the migration's progress shows as the third-party line falling.
SELECT
  DATE(event_time) AS day,
  registry_class,
  COUNTIF(reason = 'pulling') AS pulls,
  COUNTIF(reason = 'rate_limited') AS rate_limited,
  COUNTIF(reason IN ('failed', 'rate_limited')) AS failures,
  COUNTIF(reason = 'deployed') AS deployed
FROM (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY insert_id, event_time ORDER BY recorded_at) AS row_number
  FROM `${project}.${dataset}.pull_events`
) AS events
WHERE row_number = 1
GROUP BY day, registry_class
