
# ---- local stack (deploy/local/lib.sh superset_env appends this to the cluster's superset_config.py) ----
# One Superset process on loopback over plain HTTP, no Redis: in-process caches, Superset's own defaults
# for the filter and explore state, in-memory rate limits, cookies that work without TLS.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 60}
DATA_CACHE_CONFIG = CACHE_CONFIG
del FILTER_STATE_CACHE_CONFIG, EXPLORE_FORM_DATA_CACHE_CONFIG
RATELIMIT_STORAGE_URI = "memory://"
ENABLE_PROXY_FIX = False
SESSION_COOKIE_SECURE = False
