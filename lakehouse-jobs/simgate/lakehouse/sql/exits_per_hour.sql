-- Chart "Parking exits per hour": exits per hour of capture time, from the production parking-exits
-- table on main. {table}: <catalog>.production.parking_exits.
SELECT date_trunc('hour', event_time) AS hour,
       count(*)                       AS exits
FROM {table}
GROUP BY date_trunc('hour', event_time)
ORDER BY hour
