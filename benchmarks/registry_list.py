"""Server time and query count of the registry list pages over 10,000 versions of 1,000 models.

    .venv/bin/python benchmarks/registry_list.py [--requests 200] [--warmup 20] [--database-url URL] [--fresh]
                                                [--via wsgi|client] [--quiet-probe-us N]

Goals (issue 2): API p95 <= 10 ms and HTML page p95 <= 25 ms for a 100-row page; a constant number of queries.

The data set is written with bulk_create straight into the tables (not through the services, so no audit events):
1,000 models with 2 tags each, 10,000 versions with a tag, an input spec, an inspection record (~1 KB), metrics
and lineage; champion on every other model (with one earlier, ended holder), challenger on every fourth.
Model bench-model-0000 has 100 versions so that a versions page has 100 rows, like MLflow's 100-row version
search; the other 999 models share the remaining 9,900 (909 with 10, 90 with 9).

"Server time" here is the wall time of one call of the WSGI application (forge_site.wsgi, as gunicorn loads it)
in-process, as a server makes it: an environ in, the body read and the response closed. It covers middleware, URL
routing, authentication (a Bearer token for the API, a session for the page), the view, the database queries and
rendering — no socket and no HTTP parsing. DEBUG is off. `--via client` times Django's test client instead (the
method of earlier runs): its responses keep references that a server's do not (`response.json` is a partial of
the response, a reference cycle), so every response's objects wait for the cyclic garbage collector. Queries are
counted in a separate, untimed pass with CaptureQueriesContext on several pages of each kind.

This virtual machine's speed changes by up to 2x within minutes with nothing else running. After each timed request
an untimed common.speed_probe() (fixed pure-Python work) records the speed it ran at: each row reports its median
probe, and the same latencies over the "quiet" requests only, those whose probe took at most --quiet-probe-us
(default: QUIET_PROBE times the run's 5th-percentile probe, which is not quiet when the whole run was slow). Both
are printed; the quiet figures say what the code costs when the machine is at speed.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

MODELS = 1000
VERSIONS = 10_000
WIDE_MODEL = "bench-model-0000"
WIDE_VERSIONS = 100
QUIET_PROBE = 1.2
TAGS = ["credit", "fraud", "vision", "nlp", "tabular", "pii", "eu", "us", "batch", "realtime"]
TEAMS = [f"team-{n}" for n in range(10)]
RISK = ["minimal", "limited", "high", "critical"]


def version_counts() -> list[int]:
    """Versions per model: 100 for the wide model, then 10 for 909 models and 9 for 90 (10,000 in all)."""
    rest = VERSIONS - WIDE_VERSIONS
    tens = rest - 9 * (MODELS - 1)  # models that get a 10th version
    return [WIDE_VERSIONS] + [10] * tens + [9] * (MODELS - 1 - tens)


def model_name(n: int) -> str:
    return f"bench-model-{n:04d}"


def _inspection(rng: random.Random) -> dict[str, Any]:
    ops = sorted(
        rng.sample(
            [
                "aten::linear",
                "aten::relu",
                "aten::conv2d",
                "aten::add",
                "aten::mul",
                "aten::cat",
                "aten::softmax",
                "aten::layer_norm",
                "aten::matmul",
                "aten::embedding_bag",
                "aten::max_pool2d",
                "aten::flatten",
                "aten::sigmoid",
                "prim::If",
                "prim::Loop",
            ],
            8,
        )
    )
    return {
        "torch_version": "2.13.0",
        "format_version": "7",
        "file_size": rng.randint(50_000, 50_000_000),
        "parameters": rng.randint(1_000, 10_000_000),
        "buffers": rng.randint(0, 100),
        "methods": ["forward"],
        "forward_schema": "forward(__torch__.Model self, Tensor x) -> Tensor",
        "operators": ops,
        "dry_run": {"outputs": [{"shape": [2, 2], "dtype": "float32"}], "seconds": round(rng.random() / 10, 4)},
    }


def populate(env: dict[str, str], *, fresh: bool) -> dict[str, Any]:
    """Build (or reuse) the 1,000-model / 10,000-version registry in the benchmark's own database."""
    common.django_setup(env)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from forge_site.roles import ROLE_GROUPS, Role
    from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, Tag

    User = get_user_model()
    if not fresh and RegisteredModel.objects.count() == MODELS and ModelVersion.objects.count() == VERSIONS:
        return {"populated": False, "seconds": 0.0, "vendor": connection.vendor}
    started = time.perf_counter()
    rng = random.Random(42)
    now = timezone.now()
    with transaction.atomic():
        AliasAssignment.objects.all().delete()
        RegisteredModel.objects.update(latest_version=None)
        ModelVersion.objects.update(parent=None)
        ModelVersion.tags.through.objects.all().delete()
        ModelVersion.objects.all().delete()
        RegisteredModel.tags.through.objects.all().delete()
        RegisteredModel.objects.all().delete()
        engineer, _ = User.objects.get_or_create(username="bench-engineer")
        engineer.groups.add(Group.objects.get(name=ROLE_GROUPS[Role.ENGINEER]))
        tags = {t.name: t for t in Tag.objects.all()}
        missing = [Tag(name=n) for n in [*TAGS, *TEAMS, "candidate", "baseline"] if n not in tags]
        Tag.objects.bulk_create(missing)
        tags = {t.name: t for t in Tag.objects.all()}

        models = [
            RegisteredModel(
                name=model_name(n),
                description=f"Benchmark model {n}: scores {rng.choice(TAGS)} cases for the {TEAMS[n % 10]} team.",
                owner=engineer,
                risk_tier=RISK[n % 4],
                intended_use="Benchmark data; not a real model.",
            )
            for n in range(MODELS)
        ]
        models = RegisteredModel.objects.bulk_create(models, batch_size=500)
        through = RegisteredModel.tags.through
        through.objects.bulk_create(
            [through(registeredmodel_id=m.pk, tag_id=tags[TAGS[n % 10]].pk) for n, m in enumerate(models)]
            + [through(registeredmodel_id=m.pk, tag_id=tags[TEAMS[n % 10]].pk) for n, m in enumerate(models)],
            batch_size=1000,
        )

        spec = {"inputs": [{"name": "x", "shape": [None, 32], "dtype": "float32"}]}
        versions: list[ModelVersion] = []
        for m, count in zip(models, version_counts(), strict=True):
            for v in range(1, count + 1):
                sha = hashlib.sha256(f"{m.name}:{v}".encode()).hexdigest()
                status = "ready" if rng.random() < 0.9 else rng.choice(["rejected", "validating"])
                versions.append(
                    ModelVersion(
                        model=m,
                        version=str(v),
                        description=f"Version {v} of {m.name}.",
                        status=status,
                        reason="The forward pass failed on the declared input spec." if status == "rejected" else "",
                        artifact=f"torchscript/{sha[:2]}/{sha}.pt",
                        sha256=sha,
                        size=rng.randint(50_000, 50_000_000),
                        original_filename="model.pt",
                        input_spec=spec,
                        inspection=_inspection(rng) if status == "ready" else None,
                        source_commit=hashlib.sha1(sha.encode()).hexdigest(),
                        training_data=f"s3://datasets/{m.name}/v{v}.parquet",
                        metrics={"auc": round(0.7 + rng.random() / 4, 4), "f1": round(0.6 + rng.random() / 4, 4)},
                        created_by=engineer,
                    )
                )
        versions = ModelVersion.objects.bulk_create(versions, batch_size=500)
        # Spread creation times so "newest first" orderings are meaningful, and chain each version to its parent.
        by_model: dict[int, list[ModelVersion]] = {}
        for n, mv in enumerate(versions):
            mv.created_at = now - timedelta(minutes=VERSIONS - n)
            by_model.setdefault(mv.model_id, []).append(mv)
        for chain in by_model.values():
            for parent, child in itertools.pairwise(chain):
                child.parent = parent
        ModelVersion.objects.bulk_update(versions, ["created_at", "parent"], batch_size=500)
        vthrough = ModelVersion.tags.through
        vthrough.objects.bulk_create(
            [
                vthrough(modelversion_id=mv.pk, tag_id=tags["candidate" if n % 3 else "baseline"].pk)
                for n, mv in enumerate(versions)
            ],
            batch_size=1000,
        )
        for m in models:
            chain = by_model[m.pk]
            m.version_count = len(chain)
            m.latest_version = chain[-1]
        RegisteredModel.objects.bulk_update(models, ["version_count", "latest_version"], batch_size=500)

        aliases: list[AliasAssignment] = []
        for n, m in enumerate(models):
            chain = by_model[m.pk]
            if n % 2 == 0:
                aliases.append(
                    AliasAssignment(
                        model=m,
                        alias="champion",
                        version=chain[-3],
                        assigned_by=engineer,
                        started_at=now - timedelta(days=30),
                        ended_at=now - timedelta(days=10),
                    )
                )
                aliases.append(
                    AliasAssignment(
                        model=m,
                        alias="champion",
                        version=chain[-2],
                        assigned_by=engineer,
                        started_at=now - timedelta(days=10),
                    )
                )
            if n % 4 == 0:
                aliases.append(
                    AliasAssignment(
                        model=m,
                        alias="challenger",
                        version=chain[-1],
                        assigned_by=engineer,
                        started_at=now - timedelta(days=2),
                    )
                )
        AliasAssignment.objects.bulk_create(aliases, batch_size=1000)
    if connection.vendor == "sqlite" or connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"populated": True, "seconds": round(time.perf_counter() - started, 1), "vendor": connection.vendor}


def credentials() -> tuple[Any, str]:
    """The engineer and a fresh API token (forge_site.tokens.token_create)."""
    from django.contrib.auth import get_user_model

    from forge_site.tokens import token_create

    user = get_user_model().objects.get(username="bench-engineer")
    _token, plain = token_create(user=user, name="benchmark", days=1)
    return user, plain


def request_kinds() -> list[dict[str, Any]]:
    """What is timed: name, the URLs cycled through, whether it is the API, how many rows each page has."""
    pages = [f"?page={n}" for n in range(1, MODELS // 100 + 1)]
    rng = random.Random(7)
    some_models = [model_name(rng.randrange(1, 1 + version_counts().count(10))) for _ in range(20)]
    return [
        {
            "name": "API models list, 100-row page",
            "key": "api_models",
            "api": True,
            "rows": 100,
            "urls": [f"/api/v1/models/{p}" for p in pages],
        },
        {
            "name": "API models search (?search=model-01: 100 rows)",
            "key": "api_models_search",
            "api": True,
            "rows": 100,
            "urls": ["/api/v1/models/?search=model-01"],
        },
        {
            "name": "API versions list, 100 rows (model with 100 versions)",
            "key": "api_versions_100",
            "api": True,
            "rows": 100,
            "urls": [f"/api/v1/models/{WIDE_MODEL}/versions/"],
        },
        {
            "name": "API versions list, 10 rows (20 models in turn)",
            "key": "api_versions_10",
            "api": True,
            "rows": 10,
            "urls": [f"/api/v1/models/{m}/versions/" for m in some_models],
        },
        {
            "name": "API floor: one model's current aliases (0-2 rows)",
            "key": "api_floor",
            "api": True,
            "rows": None,
            "urls": [f"/api/v1/models/{m}/aliases/" for m in some_models],
        },
        {
            "name": "HTML registry list, 100-row page",
            "key": "html_list",
            "api": False,
            "rows": 100,
            "urls": [f"/registry/{p}" for p in pages],
        },
        {
            "name": "HTML registry search (?q=model-01: 100 rows)",
            "key": "html_search",
            "api": False,
            "rows": 100,
            "urls": ["/registry/?q=model-01"],
        },
    ]


def _check(response: Any, kind: dict[str, Any], url: str) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
    if kind["api"]:
        body = response.json()
        rows = body["results"] if isinstance(body, dict) and "results" in body else body
        if kind["rows"] is not None and len(rows) != kind["rows"]:
            raise RuntimeError(f"{url} returned {len(rows)} rows, expected {kind['rows']}")


class WsgiResponse:
    def __init__(self, status: str, content: bytes) -> None:
        self.status_code = int(status.split(" ", 1)[0])
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class WsgiCaller:
    """GETs through a WSGI application as a server makes them: an environ in, the body read, the response closed."""

    def __init__(self, application: Any, **headers: str) -> None:
        self.application = application
        self.headers = headers

    def get(self, url: str) -> WsgiResponse:
        path, _, query = url.partition("?")
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "HTTP_HOST": "127.0.0.1"}
        setup_testing_defaults(environ)  # the rest of a minimal WSGI environ (server name, input, errors, scheme)
        environ.update(self.headers)
        statuses: list[str] = []
        body = self.application(environ, lambda status, _headers, _exc=None: statuses.append(status))
        try:
            content = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        return WsgiResponse(statuses[0], content)


def measure_in_process(
    user: Any, token: str, *, requests: int, warmup: int, via: str, quiet_probe_s: float | None = None
) -> list[dict[str, Any]]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    import forge_site.wsgi  # the process state the real server runs in: apps and URLconf loaded, startup frozen

    api: Any
    html: Any
    session = Client()
    session.force_login(user)
    if via == "wsgi":
        api = WsgiCaller(forge_site.wsgi.application, HTTP_AUTHORIZATION=f"Bearer {token}")
        cookie = session.cookies[settings.SESSION_COOKIE_NAME]
        html = WsgiCaller(forge_site.wsgi.application, HTTP_COOKIE=f"{cookie.key}={cookie.value}")
    else:
        api, html = Client(HTTP_AUTHORIZATION=f"Bearer {token}"), session
    out = []
    timed: list[list[tuple[float, float]]] = []  # per row: (latency, the probe after it)
    for kind in request_kinds():
        client = api if kind["api"] else html
        urls = kind["urls"]
        for n in range(warmup):
            url = urls[n % len(urls)]
            _check(client.get(url), kind, url)
        counts = set()
        for url in urls[:5]:
            with CaptureQueriesContext(connection) as ctx:
                _check(client.get(url), kind, url)
            counts.add(len(ctx.captured_queries))
        samples, cpu, probes = [], [], []
        for n in range(requests):
            url = urls[n % len(urls)]
            cpu_started = time.process_time()
            started = time.perf_counter()
            response = client.get(url)
            samples.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
            probes.append(common.speed_probe())  # untimed: the machine's speed while this row was measured
        out.append(
            {
                **{k: kind[k] for k in ("name", "key", "api", "rows")},
                "example": urls[0],
                "queries": sorted(counts),
                **common.summarize(samples),
                "cpu_p50": common.summarize(cpu)["p50"],
                "probe_p50_us": round(statistics.median(probes) * 1e6),
            }
        )
        timed.append(list(zip(samples, probes, strict=True)))
    # The same figures over the requests timed while the machine ran near its fastest: those whose probe took at
    # most QUIET_PROBE x the run's 5th-percentile probe.
    probes = sorted(probe for pairs in timed for _latency, probe in pairs)
    threshold = quiet_probe_s or QUIET_PROBE * probes[len(probes) // 20]
    for row, pairs in zip(out, timed, strict=True):
        quiet = [latency for latency, probe in pairs if probe <= threshold]
        row["quiet"] = {"n": len(quiet), **(common.summarize(quiet) if len(quiet) >= 20 else {})}
        row["quiet_probe_max_us"] = round(threshold * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in <var-dir>/list/")
    parser.add_argument("--fresh", action="store_true", help="rebuild the data set even if it is there")
    parser.add_argument("--via", choices=["wsgi", "client"], default="wsgi", help="see the docstring")
    parser.add_argument(
        "--quiet-probe-us",
        type=float,
        default=None,
        help="a request is 'quiet' when the probe after it took at most this long (default: QUIET_PROBE x the run's"
        " 5th-percentile probe; on the machine of docs/performance.md the probe takes 840-1,000 us when it is quiet)",
    )
    args = parser.parse_args()

    env = list_env(args.var_dir, args.database_url)
    common.migrate(env)
    pop = populate(env, fresh=args.fresh)
    from django.db import connections

    connections.close_all()
    user, token = credentials()
    busy = common.BusyMeter()
    quiet = args.quiet_probe_us / 1e6 if args.quiet_probe_us else None
    rows = measure_in_process(
        user, token, requests=args.requests, warmup=args.warmup, via=args.via, quiet_probe_s=quiet
    )
    goals = {"api": 10.0, "html": 25.0}
    for row in rows:
        row["goal_p95_ms"] = goals["api"] if row["api"] else goals["html"]
    result = {
        "benchmark": "registry_list",
        "method": "in-process, DEBUG off; wall time of one WSGI call (environ in, body read, response closed)"
        if args.via == "wsgi"
        else "in-process django.test.Client, DEBUG off; wall time of client.get()",
        "via": args.via,
        "database": pop["vendor"],
        "population": pop,
        "requests": args.requests,
        "warmup": args.warmup,
        "rows": rows,
        "machine": common.machine_info(),
        "busy": busy.finish(),
        "command": " ".join(["benchmarks/registry_list.py", *sys.argv[1:]]),
    }
    common.write_result(args.var_dir, f"registry_list_{pop['vendor']}", result)
    print(
        f"\nregistry list over {VERSIONS:,} versions / {MODELS:,} models ({pop['vendor']}), "
        f"{args.requests} requests after {args.warmup} warm-up, server time in-process"
    )
    common.print_table(
        [
            [
                r["name"],
                r["p50"],
                r["p95"],
                r["p99"],
                r["goal_p95_ms"],
                r["cpu_p50"],
                "/".join(map(str, r["queries"])),
                r["probe_p50_us"],
                f"{r['quiet']['n']}: {r['quiet'].get('p50', '-')} / {r['quiet'].get('p95', '-')}",
            ]
            for r in rows
        ],
        [
            "request",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "goal p95",
            "CPU p50 ms",
            "queries",
            "probe us",
            f"quiet (probe <= {rows[0]['quiet_probe_max_us']} us): n: p50 / p95",
        ],
    )
    print(f"busy: {result['busy']}")


def list_env(var_dir: Path, database_url: str | None) -> dict[str, str]:
    env = common.bench_env(var_dir / "list", database_url)
    if env["DATABASE_URL"].startswith("postgres"):
        ensure_postgres_database(env["DATABASE_URL"])
    return env


def ensure_postgres_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
