"""Generated fleets of any size, for benchmarks and for testing the console at scale.

The shape follows the default fleet: a few edge services take ingress, each service calls one to
three services deeper in a layered graph, and tenant queues feed worker services. Everything comes
from a seeded generator, so the same ``(n_services, seed)`` gives the same fleet.
"""
from __future__ import annotations

import random

from engine.policy.models import DependencySpec, FleetSettings, FleetSpec, QueueSpec, RegionSpec, ServiceSpec

CIRCUITS = ("action_handler", "cloud_run_upstream", "database", "app_backend")


def synthetic_fleet(n_services: int, seed: int = 1, *, tenants: int | None = None, layers: int = 5) -> FleetSpec:
    """A layered fleet of ``n_services`` services (at least 2) with tenant queues on its workers."""
    if n_services < 2:
        raise ValueError("a synthetic fleet needs at least 2 services")
    rng = random.Random(f"fleet-{seed}-{n_services}")
    layers = max(2, min(layers, n_services))
    per_layer: list[list[str]] = [[] for _ in range(layers)]
    for i in range(n_services):
        per_layer[min(layers - 1, i * layers // n_services)].append(f"svc-{i:04d}")
    services: list[ServiceSpec] = []
    for depth, names in enumerate(per_layer):
        deeper = [n for layer in per_layer[depth + 1 :] for n in layer]
        for name in names:
            deps = []
            if deeper:
                for dep in rng.sample(deeper, k=min(len(deeper), rng.randint(1, 3))):
                    deps.append(DependencySpec(service=dep, circuit=rng.choice(CIRCUITS), calls_per_request=round(rng.uniform(0.2, 1.0), 2)))
            kind = "database" if not deeper and rng.random() < 0.3 else ("worker" if depth == 1 and rng.random() < 0.3 else "http")
            services.append(
                ServiceSpec(
                    name=name,
                    kind=kind,
                    ingress_rps=round(rng.uniform(50, 400), 1) if depth == 0 else 0.0,
                    replicas=rng.randint(2, 8),
                    capacity_rps_per_replica=2000.0,
                    base_p50_ms=round(rng.uniform(3, 30), 1),
                    base_error_pct=0.02,
                    base_4xx_pct=0.05,
                    memory_pct=round(rng.uniform(35, 65), 1),
                    critical=rng.random() < 0.5,
                    depends_on=deps,
                )
            )
    workers = [s.name for s in services if s.kind == "worker"] or [services[0].name]
    n_tenants = tenants if tenants is not None else max(1, n_services // 20)
    queues = [
        QueueSpec(
            account_id=f"acct-{1000 + i}",
            consumer=workers[i % len(workers)],
            ingest_per_s=round(rng.uniform(1, 8), 1),
            concurrency=20,
            max_concurrency=100,
            quota=100,
            per_worker_msgs_per_s=0.5,
        )
        for i in range(n_tenants)
    ]
    return FleetSpec(
        fleet=FleetSettings(name=f"synthetic-{n_services}", tick_ms=1000, health_check_interval_s=10, health_check_timeout_s=5, noise_pct=3),
        regions=[
            RegionSpec(name="us-central1", role="primary", replication_lag_ms=60),
            RegionSpec(name="us-west1", role="standby", replication_lag_ms=60),
        ],
        services=services,
        queues=queues,
    )
