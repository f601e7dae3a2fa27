-- Chart "WAP runs": each published Write-Audit-Publish run with the rows it published, from the
-- operations table ops.wap_runs (written in the same Nessie merge as the run's data) on main.
SELECT published_at, wap_run_id, topic, tag, rows_read, rows_trusted, rows_untrusted
FROM {catalog}.ops.wap_runs
ORDER BY published_at, topic
