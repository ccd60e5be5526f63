"""Champion/challenger rollouts: the rollout, its per-minute traffic aggregates, outcomes, promotion requests."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from models_registry.models import ModelVersion, RegisteredModel


class RolloutState(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PROMOTED = "promoted", "Promoted"
    ROLLED_BACK = "rolled_back", "Rolled back"
    ABORTED = "aborted", "Aborted"


# A rollout in one of these states holds its model: no second one may start (the partial unique index below).
ACTIVE_STATES = (RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.AWAITING_APPROVAL)
TERMINAL_STATES = (RolloutState.PROMOTED, RolloutState.ROLLED_BACK, RolloutState.ABORTED)
# States in which requests are routed by the plan (a paused rollout sends everyone to the champion).
SERVING_STATES = (RolloutState.RUNNING, RolloutState.AWAITING_APPROVAL)


class AdvanceMode(models.TextChoices):
    MANUAL = "manual", "Manual"
    AUTOMATIC = "automatic", "Automatic"


class Arm(models.TextChoices):
    CHAMPION = "champion", "Champion"
    CHALLENGER = "challenger", "Challenger"


class Rollout(models.Model):
    """A staged champion/challenger test of one model: the plan, where it stands, and how it ended."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="rollouts")
    champion = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    challenger = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=24, choices=RolloutState.choices, default=RolloutState.DRAFT, db_index=True)
    plan = models.JSONField(help_text='steps: [{"share": 5.0, "min_minutes": 0, "min_samples": 0}, …]')
    advance_mode = models.CharField(max_length=16, choices=AdvanceMode.choices, default=AdvanceMode.MANUAL)
    step_index = models.PositiveSmallIntegerField(default=0, help_text="the current (or, in a draft, first) step")
    challenger_share = models.FloatField(default=0.0, help_text="percent of traffic routed to the challenger now")
    step_started_at = models.DateTimeField(null=True, blank=True)
    guardrails = models.JSONField(default=dict, help_text="rollouts.guardrails.GuardrailConfig, defaults filled in")
    primary_metric = models.JSONField(default=dict, help_text="rollouts.guardrails.PrimaryMetric")
    salt = models.CharField(max_length=64)
    unit_key = models.CharField(max_length=64, default="user", help_text="what a unit id names (user, account…)")
    description = models.TextField(blank=True)
    revision = models.PositiveIntegerField(
        default=1, help_text="bumped by every change, so a serving process can tell its copy is stale"
    )
    rejected_outcomes = models.PositiveBigIntegerField(
        default=0, help_text="outcomes refused for a request id this rollout never issued"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True)
    breach = models.JSONField(null=True, blank=True, help_text="the guardrail verdicts that rolled it back")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(state__in=[s.value for s in ACTIVE_STATES]),
                name="one_active_rollout_per_model",
                violation_error_message="This model already has a rollout running, paused or awaiting approval.",
            ),
            models.CheckConstraint(
                condition=models.Q(challenger_share__gte=0) & models.Q(challenger_share__lte=100),
                name="rollout_share_is_a_percentage",
            ),
        ]

    def __str__(self) -> str:
        return f"rollout #{self.pk} of {self.model.name}: {self.champion.version} vs {self.challenger.version}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def current_step(self) -> dict:
        return self.plan[min(self.step_index, len(self.plan) - 1)]

    @property
    def is_last_step(self) -> bool:
        return self.step_index >= len(self.plan) - 1


class ArmMinute(models.Model):
    """What one arm of a rollout served in one minute, as one writer counted it; rows add up (mergeable).

    Written by the serving process (one writer per process, flushed as it goes) and by the console (assignments
    and outcomes it records). Any window's totals are the sums of its rows, whatever the writers.
    """

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="minutes")
    arm = models.CharField(max_length=16, choices=Arm.choices)
    minute = models.DateTimeField(help_text="UTC, truncated to the minute")
    writer = models.CharField(max_length=128, help_text='who counted: "console" or "serving:<host>:<pid>"')
    requests = models.PositiveBigIntegerField(default=0, help_text="requests served (a model ran)")
    assignments = models.PositiveBigIntegerField(default=0, help_text="assign calls (a gateway serves the model)")
    errors = models.PositiveBigIntegerField(default=0)
    fallbacks = models.PositiveBigIntegerField(default=0, help_text="challenger failures answered by the champion")
    latency_buckets = models.JSONField(default=dict, help_text="rollouts.aggregates.LatencyHistogram.to_json()")
    latency_sum_ms = models.FloatField(default=0.0)
    share_sum = models.FloatField(
        default=0.0, help_text="sum over these requests of the challenger's share (0-1) when each was assigned"
    )
    unitless = models.PositiveBigIntegerField(default=0, help_text="requests without a unit id (assigned at random)")
    unitless_share_sum = models.FloatField(default=0.0, help_text="share_sum of the requests without a unit id")
    success_count = models.PositiveBigIntegerField(default=0)
    successes = models.PositiveBigIntegerField(default=0)
    value_count = models.PositiveBigIntegerField(default=0)
    value_sum = models.FloatField(default=0.0)
    value_sum_sq = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["minute"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "arm", "minute", "writer"], name="one_row_per_writer_minute")
        ]
        indexes = [models.Index(fields=["rollout", "minute"])]

    def __str__(self) -> str:
        return f"{self.rollout_id} {self.arm} {self.minute:%Y-%m-%d %H:%M} {self.writer}"


class RolloutUnit(models.Model):
    """A unit (user, account…) the rollout has routed, once, with the arm and share of its first request.

    The sample-ratio check counts units, the thing that is randomised: a unit's requests all go to one arm, so
    counting requests would treat a user's hundred requests as a hundred independent draws and cry mismatch at the
    first heavy user. Rows are written once per unit (insert, ignoring one already there).
    """

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="units")
    point = models.BigIntegerField(help_text="the unit's hash point (signed 64-bit), not the unit id")
    arm = models.CharField(max_length=16, choices=Arm.choices)
    share = models.FloatField(help_text="the challenger's share (percent) when the unit was first routed")
    first_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "point"], name="one_row_per_rollout_unit")]

    def __str__(self) -> str:
        return f"unit {self.point} of rollout {self.rollout_id} ({self.arm})"


class Outcome(models.Model):
    """The outcome of one served request (a success, or a value), joined to its arm by the signed request id."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="outcomes")
    request_id = models.CharField(max_length=80, unique=True)
    arm = models.CharField(max_length=16, choices=Arm.choices)
    served_minute = models.DateTimeField()
    success = models.BooleanField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["rollout", "received_at"])]

    def __str__(self) -> str:
        return f"outcome of {self.request_id}"


class PromotionPolicy(models.Model):
    """What evidence a promotion of this model needs; a model without one gets the documented defaults."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, related_name="promotion_policy")
    require_parity = models.BooleanField(default=True, help_text="a passing parity run of challenger vs champion")
    benchmark_p95_budget = models.FloatField(
        null=True, blank=True, default=1.2, help_text="challenger benchmark p95 at most this times the champion's"
    )
    require_no_open_drift_alert = models.BooleanField(default=True)
    min_samples = models.PositiveIntegerField(default=1000, help_text="requests the challenger served in the rollout")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "promotion policies"

    def __str__(self) -> str:
        return f"promotion policy of {self.model.name}"


class PromotionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class PromotionRequest(models.Model):
    """An engineer's request to promote a rollout's challenger, and a manager's decision on it (four eyes)."""

    rollout = models.ForeignKey(Rollout, on_delete=models.PROTECT, related_name="promotion_requests")
    status = models.CharField(
        max_length=16, choices=PromotionStatus.choices, default=PromotionStatus.PENDING, db_index=True
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    comment = models.TextField(blank=True)
    requirements = models.JSONField(default=list, help_text="each requirement, met or not, when it was asked for")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    override_reason = models.TextField(blank=True)
    decision_requirements = models.JSONField(null=True, blank=True, help_text="the requirements when decided")

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rollout"],
                condition=models.Q(status="pending"),
                name="one_pending_promotion_per_rollout",
            ),
            # Four eyes, held by the database too: whatever path writes a decision, it cannot be the requester's.
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True) | ~models.Q(decided_by=models.F("requested_by")),
                name="promotion_decider_is_not_requester",
            ),
        ]

    def __str__(self) -> str:
        return f"promotion request #{self.pk} of rollout #{self.rollout_id} ({self.status})"
