"""compose.yaml as an operator uses it: ``docker compose up`` still starts
the one instance with Redis, and the "cluster" profile's three instances
share what must be shared and keep apart what must be their own
(docs/deploy.md, "Several machines"). No container runs here: the file is
read as compose reads it (YAML with its anchors merged)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED = (
    "GORTC_DATABASE_URL",
    "GORTC_REDIS_URL",
    "GORTC_AUTH_SECRET",
    "GORTC_STORAGE_URL",
    "GORTC_STORAGE_ENDPOINT",
    "GORTC_STORAGE_ACCESS_KEY",
    "GORTC_STORAGE_SECRET_KEY",
    "GORTC_SERVER_PUBLIC_URL",
)
OWN = ("GORTC_SERVER_INSTANCE_URL", "GORTC_LIVE_RTMP_PUBLIC_URL")


def services() -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded["services"]  # type: ignore[no-any-return]


def test_the_default_set_up_is_still_one_instance_with_redis() -> None:
    default = [name for name, service in services().items() if "profiles" not in service]
    assert default == ["gortc", "redis"]
    assert "GORTC_DATABASE_URL" not in services()["gortc"].get("environment", {})


def test_the_cluster_instances_share_the_stores_and_keep_their_own_address() -> None:
    found = services()
    instances = {name: s for name, s in found.items() if re.fullmatch(r"gortc-\d", name)}
    assert len(instances) == 3
    for name in ("postgres", "objects", *instances):
        assert found[name]["profiles"] == ["cluster"], name
    environments = [service["environment"] for service in instances.values()]
    for key in SHARED:
        assert len({env[key] for env in environments}) == 1, key
    assert environments[0]["GORTC_AUTH_SECRET"] == "${GORTC_AUTH_SECRET}"
    for key in OWN:
        assert len({env[key] for env in environments}) == 3, key
    for field in ("ports", "volumes"):
        assert len({str(service[field]) for service in instances.values()}) == 3, field
    for service in instances.values():
        assert set(service["depends_on"]) == {"postgres", "objects", "redis"}


def test_the_instances_are_where_the_shipped_nginx_site_looks() -> None:
    site = (ROOT / "deploy" / "nginx" / "gortc-instances.conf").read_text()
    upstreams = re.findall(r"server 127\.0\.0\.1:(\d+) ", site)
    for number, service in enumerate((services()[f"gortc-{n}"] for n in (1, 2, 3)), start=1):
        http = service["ports"][0]
        assert http == f"127.0.0.1:808{number}:8080"
        assert service["environment"]["GORTC_SERVER_INSTANCE_URL"].endswith(f"/i{number}")
        if number <= len(upstreams):
            assert upstreams[number - 1] == f"808{number}"
            assert f"location /i{number}/" in site
