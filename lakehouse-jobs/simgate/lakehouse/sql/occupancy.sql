-- Chart "Occupancy over time": cars in the lot at the end of each hour (entries minus exits so far),
-- from the production entries and exits tables on main. {catalog}: nessie (Spark) or iceberg (Trino).
SELECT hour,
       sum(net) OVER (ORDER BY hour ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS occupancy
FROM (
  SELECT hour, sum(delta) AS net
  FROM (
    SELECT date_trunc('hour', event_time) AS hour, 1 AS delta FROM {catalog}.production.parking_entries
    UNION ALL
    SELECT date_trunc('hour', event_time) AS hour, -1 AS delta FROM {catalog}.production.parking_exits
  ) moves
  GROUP BY hour
) per_hour
ORDER BY hour
