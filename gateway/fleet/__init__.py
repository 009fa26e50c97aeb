"""Fleet mode: replicas behind one load balancer share a call registry in Redis (see registry.py)."""
