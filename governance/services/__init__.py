"""Governance writes, one module per concern. Each service changes rows and records the audit event in one
transaction; side effects (enqueueing a job) happen when the transaction commits."""
