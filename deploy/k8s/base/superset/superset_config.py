# Superset's configuration (SUPERSET_CONFIG_PATH), generated into the ConfigMap superset-config-<hash>:
# a change rolls the pods. Superset reads SECRET_KEY from SUPERSET_SECRET_KEY (Secret simgate-superset).
import os

# Metadata database: PostgreSQL (StatefulSet superset-postgres); the URI with its password comes from
# the Secret simgate-superset (key database-uri).
SQLALCHEMY_DATABASE_URI = os.environ["SUPERSET_DATABASE_URI"]

# Caches and shared state on Redis (Deployment superset-redis), one database number each, so that every
# Superset pod sees the same cache, filter state and rate limits.
_REDIS = os.environ.get("SUPERSET_REDIS_URL", "redis://superset-redis.simgate.svc:6379")


def _cache(db: int, timeout: int) -> dict:
    return {
        "CACHE_TYPE": "RedisCache",
        "CACHE_DEFAULT_TIMEOUT": timeout,
        "CACHE_KEY_PREFIX": "superset_",
        "CACHE_REDIS_URL": f"{_REDIS}/{db}",
    }


# The dashboard reads published (main) data; a minute of cache is plenty.
CACHE_CONFIG = _cache(0, 60)
DATA_CACHE_CONFIG = _cache(1, 60)
FILTER_STATE_CACHE_CONFIG = _cache(2, 86400)
EXPLORE_FORM_DATA_CACHE_CONFIG = _cache(3, 86400)
RATELIMIT_STORAGE_URI = f"{_REDIS}/4"

# Behind the Ingress (TLS ends there): trust its X-Forwarded-* headers for URLs and redirects.
ENABLE_PROXY_FIX = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_SAMESITE = "Lax"

FEATURE_FLAGS = {"DASHBOARD_RBAC": True}
ROW_LIMIT = 50000
