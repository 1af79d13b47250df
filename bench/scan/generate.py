"""Generate a tree of realistic files for the scan benchmark (deterministic for a seed).

Four kinds in equal shares: Dockerfiles (multi-stage, ARGs, COPY --from), multi-document
Kubernetes manifests (Deployment + Service + CronJob), docker-compose files and Helm
values files.  Each file names third-party and first-party images; comments mention
images too, as real files do.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

IMAGES = [
    "nginx:1.27.{i}",
    "redis:7.{i}",
    "postgres:16.{i}",
    "quay.io/prometheus/node-exporter:v1.8.{i}",
    "ghcr.io/acme/service-{i}:v2",
    "registry.k8s.io/pause:3.{i}",
    "bitnami/kubectl:1.{i}",
    "us-docker.pkg.dev/acme/apps/app-{i}:1.0",
    "gcr.io/distroless/static:nonroot",
]


def image(rng: random.Random) -> str:
    return rng.choice(IMAGES).format(i=rng.randint(0, 30))


def dockerfile(rng: random.Random) -> str:
    return f"""# syntax=docker/dockerfile:1
ARG BASE={image(rng)}
# FROM {image(rng)} is what we used before
FROM ${{BASE}} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.cache \\
    make build
COPY --from={image(rng)} /bin/tool /bin/tool
FROM {image(rng)}
COPY --from=build /src/out /app
USER 65532
ENTRYPOINT ["/app/server"]
"""


def manifests(rng: random.Random, n: int) -> str:
    return f"""# service {n}; image: references in comments are not images
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{n}
  labels: {{app: svc-{n}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: svc-{n}}}
  template:
    metadata:
      labels: {{app: svc-{n}}}
    spec:
      initContainers:
        - name: init
          image: {image(rng)}
      containers:
        - name: app
          image: "{image(rng)}"
          ports: [{{containerPort: 8080}}]
          env:
            - {{name: MODE, value: production}}
          resources:
            limits: {{cpu: 500m, memory: 256Mi}}
        - name: sidecar
          image: {image(rng)}
---
apiVersion: v1
kind: Service
metadata:
  name: svc-{n}
spec:
  selector: {{app: svc-{n}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: job-{n}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: job
              image: {image(rng)}
"""


def compose(rng: random.Random) -> str:
    return f"""services:
  web:
    image: {image(rng)}
    ports: ["8080:80"]
    depends_on: [db, cache]
  db:
    image: {image(rng)}
    environment:
      POSTGRES_PASSWORD: example   # image: not this one
  cache:
    image: ${{CACHE_IMAGE:-{image(rng)}}}
"""


def values(rng: random.Random) -> str:
    return f"""# Default values.
replicaCount: 2
image:
  registry: docker.io
  repository: bitnami/nginx
  tag: 1.27.{rng.randint(0, 9)}
  pullPolicy: IfNotPresent
sidecar:
  image: {image(rng)}
metrics:
  enabled: true
  exporterImage: "{image(rng)}"
podAnnotations: {{}}
resources:
  limits: {{cpu: 100m}}
"""


def generate(root: Path, count: int, seed: int = 1) -> None:
    if root.exists():
        shutil.rmtree(root)
    rng = random.Random(seed)
    for n in range(count):
        directory = root / f"team-{n % 50:02d}" / f"svc-{n:05d}"
        directory.mkdir(parents=True, exist_ok=True)
        kind = n % 4
        if kind == 0:
            (directory / "Dockerfile").write_text(dockerfile(rng))
        elif kind == 1:
            (directory / "deploy.yaml").write_text(manifests(rng, n))
        elif kind == 2:
            (directory / "docker-compose.yml").write_text(compose(rng))
        else:
            (directory / "values.yaml").write_text(values(rng))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate(args.root, args.files, args.seed)


if __name__ == "__main__":
    main()
