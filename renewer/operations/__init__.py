"""Operations: what each run tells its operators — metrics, notifications, a run journal.

Pure modules (``metrics``, ``notices``, ``journal``, ``redact``, ``run``) compute datapoints,
messages and records from a :class:`~renewer.report.RenewalReport`; ``ports`` states what the
sinks must do; ``facade`` runs them after each run and never fails it. The OCI adapters are in
``renewer.adapters`` and are wired by :func:`renewer.operations_wiring.build_operations`.
"""

from renewer.operations.facade import AfterRunSummary, Operations
from renewer.operations.run import RunInfo, Trigger

__all__ = ["AfterRunSummary", "Operations", "RunInfo", "Trigger"]
