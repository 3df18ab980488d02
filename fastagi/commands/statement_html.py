"""The printable HTML page of a statement (`ictcontact statement --format html`): one
self-contained file (no scripts, no fonts or images fetched), A4 print CSS, every value
escaped. Open it in a browser and print, or print it to PDF."""

from __future__ import annotations

from html import escape
from typing import Callable

from fastagi.billing.statement import Statement

STYLE = """
@page { size: A4; margin: 18mm 16mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; font-size: 10.5pt;
       color: #1a1a1a; margin: 0 auto; max-width: 180mm; padding: 12mm 0; }
header { display: flex; justify-content: space-between; align-items: flex-start;
         border-bottom: 2px solid #1a1a1a; padding-bottom: 4mm; margin-bottom: 6mm; }
h1 { font-size: 18pt; margin: 0 0 1mm 0; letter-spacing: 0.02em; }
h2 { font-size: 11pt; margin: 8mm 0 2mm 0; text-transform: uppercase; letter-spacing: 0.06em;
     color: #444; }
.client { font-size: 13pt; font-weight: bold; }
.muted { color: #555; }
.meta { text-align: right; line-height: 1.5; }
table { width: 100%; border-collapse: collapse; }
th { text-align: left; font-weight: 600; border-bottom: 1px solid #1a1a1a; padding: 1.5mm 2mm; }
td { padding: 1.3mm 2mm; border-bottom: 1px solid #ddd; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { border-top: 1.5px solid #1a1a1a; border-bottom: none; font-weight: bold; }
table.summary { width: 95mm; margin-left: auto; }
table.summary td { border-bottom: 1px solid #eee; }
table.summary tr.closing td { border-top: 1.5px solid #1a1a1a; border-bottom: 3px double #1a1a1a;
                              font-weight: bold; font-size: 11.5pt; }
.note { margin-top: 3mm; padding: 2mm 3mm; background: #fff6d6; border-left: 3px solid #c9a227; }
footer { margin-top: 10mm; border-top: 1px solid #ccc; padding-top: 3mm; font-size: 8.5pt;
         color: #555; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
@media print { body { padding: 0; } .note { background: none; } }
"""


def render(s: Statement, summary: list[tuple[str, object]], money: Callable[[object], str]) -> str:
    e = escape
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<title>Statement {e(str(s.period))} - {e(s.name)}</title>\n",
        f"<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<div>\n",
        "<h1>Statement of account</h1>\n",
        f"<div class=\"client\">{e(s.name)}</div>\n",
        f"<div class=\"muted\">Account {e(s.code)}</div>\n</div>\n",
        "<div class=\"meta\">\n",
        f"<div><strong>Period {e(str(s.period))}</strong></div>\n",
        f"<div class=\"muted\">{s.period.start:%d %b %Y} 00:00 to "
        f"{s.period.end:%d %b %Y} 00:00 UTC</div>\n",
        "<div class=\"muted\">Amounts in USD</div>\n</div>\n</header>\n",
    ]
    if s.is_open:
        parts.append(f"<div class=\"note\">This period is not over yet: made "
                     f"{s.made_at:%d %b %Y %H:%M} UTC; later calls and payments will be "
                     f"added.</div>\n")
    parts.append("<h2>Summary</h2>\n<table class=\"summary\">\n")
    for label, amount in summary:
        row_class = " class=\"closing\"" if label == "Closing balance" else ""
        parts.append(f"<tr{row_class}><td>{e(label)}</td>"
                     f"<td class=\"num\">{money(amount)}</td></tr>\n")
    parts.append("</table>\n")

    parts.append("<h2>Payments, transfers and corrections</h2>\n" if s.transfers
                 else "<h2>Payments and corrections</h2>\n")
    if s.payment_rows:
        parts.append("<table>\n<thead><tr><th>Date (UTC)</th><th>Kind</th><th>Reference</th>"
                     "<th class=\"num\">Amount</th></tr></thead>\n<tbody>\n")
        for p in s.payment_rows:
            note = f"<br><span class=\"muted\">{e(p.note)}</span>" if p.note else ""
            parts.append(f"<tr><td>{p.at:%Y-%m-%d %H:%M}</td><td>{e(KIND_LABELS.get(p.kind, p.kind))}"
                         f"</td><td>{e(p.reference)}{note}</td>"
                         f"<td class=\"num\">{money(p.amount)}</td></tr>\n")
        parts.append(f"<tr class=\"total\"><td colspan=\"3\">Total</td><td class=\"num\">"
                     f"{money(s.payments + s.transfers + s.corrections)}</td></tr>\n</tbody>\n</table>\n")
    else:
        parts.append("<p class=\"muted\">No payments in this period.</p>\n")

    parts.append("<h2>Usage by destination</h2>\n")
    if s.usage:
        parts.append("<table>\n<thead><tr><th>Destination</th><th>Prefix</th>"
                     "<th class=\"num\">Calls</th><th class=\"num\">Minutes</th>"
                     "<th class=\"num\">Cost</th></tr></thead>\n<tbody>\n")
        for u in s.usage:
            parts.append(f"<tr><td>{e(u.destination)}</td><td>{e(u.prefix or '')}</td>"
                         f"<td class=\"num\">{u.calls}</td><td class=\"num\">{u.minutes}</td>"
                         f"<td class=\"num\">{money(u.cost)}</td></tr>\n")
        parts.append(f"<tr class=\"total\"><td colspan=\"2\">Total</td>"
                     f"<td class=\"num\">{s.calls}</td><td class=\"num\">{s.minutes}</td>"
                     f"<td class=\"num\">{money(s.usage_cost)}</td></tr>\n</tbody>\n</table>\n")
    else:
        parts.append("<p class=\"muted\">No calls in this period.</p>\n")

    if s.client_charges:
        parts.append("<h2>Your clients' calls</h2>\n<table>\n<thead><tr><th>Client</th>"
                     "<th>Name</th><th class=\"num\">Calls</th><th class=\"num\">Minutes</th>"
                     "<th class=\"num\">Cost</th><th class=\"num\">Sold</th>"
                     "<th class=\"num\">Margin</th></tr></thead>\n<tbody>\n")
        for c in s.client_charges:
            parts.append(f"<tr><td>{e(c.code)}</td><td>{e(c.name)}</td>"
                         f"<td class=\"num\">{c.calls}</td><td class=\"num\">{c.minutes}</td>"
                         f"<td class=\"num\">{money(c.cost)}</td>"
                         f"<td class=\"num\">{money(c.sold)}</td>"
                         f"<td class=\"num\">{money(c.margin)}</td></tr>\n")
        sold = sum(c.sold for c in s.client_charges)
        parts.append(f"<tr class=\"total\"><td colspan=\"2\">Total</td>"
                     f"<td class=\"num\">{sum(c.calls for c in s.client_charges)}</td>"
                     f"<td class=\"num\">{sum(c.minutes for c in s.client_charges)}</td>"
                     f"<td class=\"num\">{money(s.client_charges_cost)}</td>"
                     f"<td class=\"num\">{money(sold)}</td>"
                     f"<td class=\"num\">{money(sold - s.client_charges_cost)}</td></tr>\n"
                     "</tbody>\n</table>\n")

    parts.append("<footer>Minutes are billed minutes (after the billing increments); emergency "
                 "calls show their talk time and are never charged. A call is on the statement "
                 "of the month it ended in. Closing balance = opening balance + payments + "
                 "corrections &minus; usage")
    if s.client_charges or s.transfers:
        parts.append(" + transfers to your clients (negative) &minus; what you paid for your "
                     "clients' calls (at your rates; sold: what they paid you)")
    parts.append(".")
    if s.made_at is not None:
        parts.append(f" Made {s.made_at:%Y-%m-%d %H:%M} UTC.")
    parts.append("</footer>\n</body>\n</html>\n")
    return "".join(parts)


KIND_LABELS = {"topup": "Payment", "opening": "Opening payment", "correction": "Correction",
               "transfer": "Transfer to a client"}
