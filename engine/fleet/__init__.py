"""The simulated fleet: services, per-tenant queues, dependencies and two regions on a clock."""
