-- Chart "Untrusted rows by reason": rows the WAP audit kept out of production, per topic and reason
-- codes (a row with several reasons counts once, under its sorted codes joined by ", "), on main.
SELECT topic, reason, count(*) AS untrusted_rows
FROM (
  SELECT 'parking-entries' AS topic, array_join(array_sort(reasons), ', ') AS reason
  FROM {catalog}.staging.parking_entries_untrusted
  UNION ALL
  SELECT 'parking-exits' AS topic, array_join(array_sort(reasons), ', ') AS reason
  FROM {catalog}.staging.parking_exits_untrusted
) untrusted
GROUP BY topic, reason
ORDER BY topic, reason
