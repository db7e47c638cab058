"""`reghub scenario run|check`: worked CTR cases through the real broker, worker and register.

Each scenario (format: ../shared/spec/scenarios/README.md) gets a fresh person key. Its domain events
are translated into wire messages on the hub's topics, sent one at a time, and each is awaited on the
output topics (decision, change feed or dead letter) before the next is sent, because a grant and a
purchase travel on different topics. Many scenarios run at once.

Every event type of the format is sent: purchases (one line or `lines`, returns, `granted_subsidy`,
henstand), grants, balancing amounts, henstand agreements and settlements, corrections and cancellations
and repayments (`ctr.corrections.v1`), scales (`ctr.subsidy-scales.v1`, keyed by their effective date; a
scale is the whole register's, so it reaches every scenario run beside it) and municipal decisions.
Events go in the file's order, which is their arrival order, whatever their payment dates. Each `as`
label is a fresh key of its own; a `renumbering` moves the person from one label's key to another's
(`cpr.person-events.v1`, keyed by the old key).
Whatever the register answers is reported as it is: a purchase's `status` (`registered`, `parked`,
`duplicate`, or `refused` with the dead letter's reason), and for the other new events their outcome.
The broker is the embedded Tansu unless REGHUB_KAFKA_BOOTSTRAP names one; the register is a fresh
SQLite file unless REGHUB_DATABASE_URL names one.

The modules, one job each: `cases` loads the files, `hub` runs the hub and routes its outputs,
`events` holds one translator per event type, `results` puts the answers in the scenarios' terms and
compares them with `expected`, `runner` runs the cases and reports.
"""

from reghub.scenarios.cases import EVENT_TYPES, ScenarioError, load_cases
from reghub.scenarios.results import compare
from reghub.scenarios.runner import main, run_case

__all__ = ["EVENT_TYPES", "ScenarioError", "compare", "load_cases", "main", "run_case"]
