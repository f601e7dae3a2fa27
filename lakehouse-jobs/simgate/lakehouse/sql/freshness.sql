-- Chart "Freshness per run": for each published run, how long its oldest event waited between its
-- capture (event_time) or its arrival at the gateway (received_at) and its row being visible on main
-- (the run's merge), in seconds; from ops.wap_runs on main.
SELECT published_at, wap_run_id, topic, rows_trusted,
       capture_to_main_seconds, ingest_to_main_seconds
FROM {catalog}.ops.wap_runs
ORDER BY published_at, topic
