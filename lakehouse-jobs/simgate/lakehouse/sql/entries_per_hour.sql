-- Entries per hour from the production (trusted) parking-entries table, on Nessie's main branch.
-- The same text runs on Trino (catalog `iceberg`, as deploy/k8s/base/trino configures it) and on Spark
-- (catalog `nessie`): simgate.lakehouse.queries substitutes {table}.
-- Trino / Superset:  iceberg.production.parking_entries
SELECT date_trunc('hour', event_time) AS hour,
       count(*)                       AS entries
FROM {table}
GROUP BY date_trunc('hour', event_time)
ORDER BY hour
