"""The current split of a rollout as a gateway's configuration (pure: no Django), for teams whose own gateway serves
the models: an Istio VirtualService with weights, or a KServe InferenceService with `canaryTrafficPercent`.

Both take whole percents (a 2.5% step is written 3%, and the JSON says `rounded`). Neither is sticky by unit: a
gateway that must keep a user on one arm asks `GET …/assign/?unit=…` (or routes on a header it sets from it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

FORMATS = ("istio", "kserve")


@dataclass(frozen=True)
class Split:
    rollout_id: int
    model: str
    state: str
    champion: str
    challenger: str
    champion_sha256: str
    challenger_sha256: str
    share: float  # the challenger's percent routed now


def k8s_name(text: str) -> str:
    """A Kubernetes object or subset name (RFC 1123 label): lower case, digits and '-', at most 63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name or "model")[:63].rstrip("-")


def _weights(share: float) -> tuple[int, int]:
    challenger = math.floor(share + 0.5)  # half up: 2.5% is 3%, as the docstring says
    return 100 - challenger, challenger


def _annotations(split: Split) -> dict[str, str]:
    return {
        "forge/rollout": str(split.rollout_id),
        "forge/state": split.state,
        "forge/champion": f"{split.champion} sha256:{split.champion_sha256}",
        "forge/challenger": f"{split.challenger} sha256:{split.challenger_sha256}",
        "forge/challenger-share": f"{split.share:g}",
    }


def istio_virtual_service(split: Split, *, host: str | None = None) -> dict[str, Any]:
    host = host or k8s_name(split.model)
    champion, challenger = _weights(split.share)
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": k8s_name(split.model), "annotations": _annotations(split)},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "route": [
                        {"destination": {"host": host, "subset": k8s_name(f"v{split.champion}")}, "weight": champion},
                        {
                            "destination": {"host": host, "subset": k8s_name(f"v{split.challenger}")},
                            "weight": challenger,
                        },
                    ]
                }
            ],
        },
    }


def kserve_inference_service(split: Split, *, storage_uri: str) -> dict[str, Any]:
    """The challenger as the latest revision with `canaryTrafficPercent`; KServe keeps the previous revision (the
    champion) for the rest. `storage_uri` is a template with {model}, {version} and {sha256}."""
    _, challenger = _weights(split.share)
    uri = storage_uri.format(model=split.model, version=split.challenger, sha256=split.challenger_sha256)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": k8s_name(split.model), "annotations": _annotations(split)},
        "spec": {
            "predictor": {
                "canaryTrafficPercent": challenger,
                "model": {"modelFormat": {"name": "pytorch"}, "storageUri": uri},
            }
        },
    }


def gateway_config(split: Split, *, fmt: str, storage_uri: str, host: str | None = None) -> dict[str, Any]:
    if fmt == "istio":
        config = istio_virtual_service(split, host=host)
    elif fmt == "kserve":
        config = kserve_inference_service(split, storage_uri=storage_uri)
    else:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return {
        "format": fmt,
        "share": split.share,
        "rounded": _weights(split.share)[1] != split.share,
        "config": config,
    }
