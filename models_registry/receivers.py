"""The registry's answers to kernel events: an inspection that ends without recording its result settles its
version, so no version stays `validating` for ever."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from forge_site.jobs import job_ended
from forge_site.models import Job, JobStatus
from models_registry.models import ModelVersion, VersionStatus
from models_registry.services import version_record_inspection

INSPECT_SUBJECT = "models_registry.modelversion"


@receiver(job_ended, dispatch_uid="models_registry.inspection_ended")
def _inspection_ended(sender: Any, job: Job, actor: Any = None, **kwargs: Any) -> None:
    """A cancelled inspection rejects its version; so does one the reaper gave up on. The artifact was never
    checked, so it must never become usable, and inspecting the same bytes again would only repeat what a retry
    already does for a lost worker or a killed sandbox. The reason says what happened and what to do."""
    if job.kind != "inspect" or job.subject_type != INSPECT_SUBJECT or not job.subject_id.isdigit():
        return
    if not ModelVersion.objects.filter(pk=int(job.subject_id), status=VersionStatus.VALIDATING).exists():
        return  # already settled (or no such version): nothing to do
    if job.status == JobStatus.CANCELLED:
        who = f" by {actor.get_username()}" if getattr(actor, "is_authenticated", False) else ""
        reason = (
            f"The inspection was cancelled{who} before it finished, so the model was never checked. "
            "Upload the artifact again under a new version string to have it inspected."
        )
    else:
        reason = job.error or "The inspection did not complete."
    version_record_inspection(version_id=int(job.subject_id), ok=False, inspection=None, reason=reason)
