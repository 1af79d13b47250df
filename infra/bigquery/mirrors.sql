-- The latest successful copy of each source reference: what is mirrored, where, and at
-- which digest.
SELECT * EXCEPT (row_number)
FROM (
  SELECT
    source,
    destination,
    registry,
    repository,
    status,
    digest,
    requested_at,
    finished_at,
    ROW_NUMBER() OVER (
      PARTITION BY source ORDER BY COALESCE(finished_at, requested_at) DESC, copy_id
    ) AS row_number
  FROM `${project}.${dataset}.copies`
  WHERE status IN ('copied', 'up-to-date')
)
WHERE row_number = 1
