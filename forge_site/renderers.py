"""The API's JSON renderer: orjson (through drf-orjson-renderer) with DRF's own encoder for everything else."""

from __future__ import annotations

import orjson
from drf_orjson_renderer.renderers import ORJSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class JSONRenderer(ORJSONRenderer):
    """Renders a 100-row page about ten times faster than DRF's json-based renderer (docs/performance.md), and
    writes the same JSON: datetimes, lazy strings, Decimal and UUID go through DRF's encoder (datetimes as
    "...Z", not orjson's "+00:00"), integer keys become strings, and a type neither knows is a TypeError rather
    than drf-orjson-renderer's silent null."""

    options = ORJSONRenderer.options | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
    default = staticmethod(JSONEncoder().default)
