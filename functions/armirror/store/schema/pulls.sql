-- Every pull event once.  Streaming inserts deduplicate by insert_id only for about a
-- minute, so a redelivered message can leave a second row: keep the first recorded.
-- insert_id and event_time together identify an event, so a filter on event_time passes
-- through the window and still prunes partitions.
SELECT * EXCEPT (row_number)
FROM (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY insert_id, event_time ORDER BY recorded_at) AS row_number
  FROM `${project}.${dataset}.pull_events`
)
WHERE row_number = 1
