"""The anchor of benchmarks/predict_serving.py: a bare DRF view that parses the JSON and runs a 32-128-2 TorchScript
MLP, nothing else (no auth, no routing, no logging). Served by gunicorn exactly as the serving process is.

    FORGE_ANCHOR_MODEL=/path/model.pt gunicorn benchmarks.predict_anchor_app:application -k gthread ...
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="anchor-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    MIDDLEWARE=[],
    DATABASES={},
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": [],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()

import torch  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

torch.set_num_threads(1)
MODEL = torch.jit.load(os.environ["FORGE_ANCHOR_MODEL"], map_location="cpu").eval()


class PredictView(APIView):
    def post(self, request: Request, rollout_id: int) -> Response:
        x = torch.tensor(request.data["inputs"]["x"], dtype=torch.float32)
        with torch.inference_mode():
            outputs = MODEL(x)
        return Response({"outputs": outputs.tolist()})


urlpatterns: list[Any] = [path("api/v1/rollouts/<int:rollout_id>/predict/", PredictView.as_view())]
application = get_wsgi_application()
