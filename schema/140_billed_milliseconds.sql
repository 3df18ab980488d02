-- Billed time from milliseconds (issue 21). The dialplan hands settle ANSWEREDTIME_MS:
-- the call record keeps that exact figure, and answered_seconds becomes the seconds
-- started (4,568 ms -> 5), never the figure Asterisk cut down. Adding a column is instant
-- (no table copy) on MariaDB 10.11; the comment change is metadata only.
ALTER TABLE calls
  MODIFY answered_seconds INT NULL
    COMMENT 'Talk time in seconds started (answered_ms rounded up); NULL if never answered or never settled',
  ADD COLUMN answered_ms BIGINT UNSIGNED NULL
    COMMENT 'Talk time reported at hangup in ms (ANSWEREDTIME_MS, or CDR billsec); what billing rounds up; NULL if never answered or never settled'
    AFTER answered_seconds;

-- Reconciliation settles a call whose hangup handler never ran from its CDR's billsec.
-- cdr_adaptive_odbc writes a DECIMAL billsec as answer-to-end in microseconds (an
-- INTEGER one as whole seconds cut down), so the column holds fractions. It reads the
-- column types when it loads: reload it after this upgrade (docs/asterisk.md).
ALTER TABLE cdr
  MODIFY billsec DECIMAL(12,6) NOT NULL DEFAULT 0
    COMMENT 'Seconds from answer to end, to the microsecond (hangup handlers excluded: endbeforehexten=yes)';
