"""simgate lakehouse jobs: Write-Audit-Publish into Iceberg on Nessie, and storage maintenance."""
