"""Alerting's pure parts (no Django, no Celery): where an alert may be sent (addresses), how it is sent (http: one
POST to an address checked just before connecting), what is sent (payloads: Slack, PagerDuty Events API v2, a signed
JSON webhook), how secrets are kept (secrets), and which numbers of a drift or fairness result a rule reads
(metrics). The Django side is governance.services.alerts and governance.services.alert_delivery."""
