"""Demo registrations for `reghub up --demo`: a few clinics registered through the private-company form,
so the embedded hub shows the treatment-place register beside the CTR.

Each clinic: its company (a valid CVR number), its unit in SOR with two doctors, and its treatment-place
information naming the responsible doctor (category 2, several doctors); some later deregister.
"""

from __future__ import annotations

from typing import Any

from rules.treatment_places.identifiers import CVR_WEIGHTS, sor_id


def _cvrs(count: int) -> list[str]:
    found = []
    body = 3_100_000
    while len(found) < count:
        digits = str(body)
        rest = sum(int(d) * w for d, w in zip(digits, CVR_WEIGHTS, strict=False)) % 11
        if (check := (11 - rest) % 11) < 10:
            found.append(digits + str(check))
        body += 1
    return found


DOCTORS = [
    {"name": "Læge A", "authorisation_id": "0C4MN", "ydernummer": "123456", "profession": "doctor"},
    {"name": "Læge B", "authorisation_id": "1D5NP", "profession": "doctor"},
]


def _step(
    run: str, i: int, cvr: str, kind: str, sent_at: str = "2024-03-01T10:00:00+01:00", **fields: Any
) -> tuple[bytes, dict[str, Any]]:
    message = {
        "event": kind,
        "message_id": f"demo-{run}-p{i}-{kind}",
        "sent_at": sent_at,
        "form": "private_cvr",
        "filer": {"role": "company", "user": "demo"},
        "company": {"cvr": cvr},
        **fields,
    }
    return cvr.encode(), message


def registrations(run: str, clinics: int = 6) -> list[tuple[bytes, dict[str, Any]]]:
    """(record key, message) of every clinic's registration steps, in order."""
    messages = []
    for i, cvr in enumerate(_cvrs(clinics)):
        place = sor_id(str(7_000 + i))
        messages += [
            _step(
                run, i, cvr, "company_registered",
                name=f"Lægehuset {i + 1}",
                address={"street": "Nørregade 1", "postal_code": "1165", "city": "København K"},
            ),
            _step(
                run, i, cvr, "unit_added",
                sor_id=place,
                name=f"Lægehuset {i + 1}, klinik",
                unit_type="Almen praksis",
                postal_address={"street": "Vestergade 2", "postal_code": "8000", "city": "Aarhus C"},
                practitioners=DOCTORS,
            ),
            _step(
                run, i, cvr, "information_added",
                sor_id=place,
                category=2,
                fee_email="gebyr@example.dk",
                turnover_year=2024,
                turnover=5_000_000 + 1_000_000 * i,
                responsible_authorisation_id="0C4MN",
            ),
        ]  # fmt: skip
        if i % 3 == 2:
            messages.append(
                _step(
                    run,
                    i,
                    cvr,
                    "deregistered",
                    sent_at="2024-09-10T10:00:00+02:00",
                    sor_id=place,
                    treatment_stopped_on="2024-09-01",
                )
            )
    return messages
