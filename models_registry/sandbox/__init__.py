"""Where the sandbox begins: the worker-side modules that run uploaded artifacts in child processes, no Django.

- `executor`: the worker's end of the job sandbox (one long-lived child per worker process, JSON lines, deadlines);
- `job_sandbox`: the child itself; its request kinds are parity, benchmark and those an app above adds through
  settings `FORGE_SANDBOX_HANDLERS` (a Django-free function named by dotted path, allow-listed there);
- `inspection` / `inspect_sandbox`: the inspection child, started per upload with resource limits;
- `runners`: TorchScript and ONNX Runtime runners and the artifact cache the children use.
"""
