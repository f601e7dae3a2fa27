-- Chart "Parking entries per hour": entries per hour of capture time, from the production (trusted)
-- parking-entries table on Nessie's main branch. One text for every engine: simgate.lakehouse.queries
-- substitutes {table} (Spark: nessie.production.parking_entries; Trino and the Superset bundle:
-- iceberg.production.parking_entries).
SELECT date_trunc('hour', event_time) AS hour,
       count(*)                       AS entries
FROM {table}
GROUP BY date_trunc('hour', event_time)
ORDER BY hour
