// Alerts about ringwatch itself. Replicas are folded (max/sum without the replica labels) so that two
// ringwatch replicas of one table never double an alert.
local u = import '../lib/utils.libsonnet';

{
  prometheusAlerts+:: {
    local cfg = $._config,
    local p = (import '../lib/promql.libsonnet')(cfg),
    local rw = p.rw,
    local R = p.replicaLabels,

    groups+: [
      {
        name: 'ringwatch-exporter',
        rules: [
          {
            alert: 'RingwatchScanFailing',
            // Judged on the last success, so a wedged scan loop (ringwatch_up stuck at its last value)
            // counts too; the second arm covers a table never scanned successfully.
            expr: |||
              time() - max without (%(R)s) (ringwatch_last_successful_scan_timestamp_seconds{%(rw)s}) > %(after)s
              or
              (max without (%(R)s) (ringwatch_up{%(rw)s}) == 0 unless on (%(T)s) ringwatch_last_successful_scan_timestamp_seconds{%(rw)s})
            ||| % { R: R, rw: rw, T: p.tableOn, after: u.num(u.seconds(cfg.scanFailingAfter)) },
            'for': cfg.scanFailingFor,
            labels: { severity: cfg.scanFailingSeverity },
            annotations: {
              summary: 'ringwatch cannot scan a table: its ring is not watched.',
              description: 'ringwatch has not scanned table {{ $labels.table }} successfully {{ if eq $value 0.0 }}since it started{{ else }}for {{ $value | humanizeDuration }}{{ end }} (threshold %s). While it cannot, no ring member alert fires for this table: a member frozen now, or one that was paging, goes unseen.' % cfg.scanFailingAfter,
            },
          },
          {
            alert: 'RingwatchDown',
            // Every target of the job down (the value: how many), or none at all.
            expr: |||
              count without (%(R)s) (up{%(rw)s} == 0)
              unless on (%(J)s)
              (up{%(rw)s} == 1)
              or
              absent(up{%(rw)s})
            ||| % { R: R, rw: rw, J: u.labels(p.groupLabels + ['job']) },
            'for': cfg.downFor,
            labels: { severity: cfg.downSeverity },
            annotations: {
              summary: 'ringwatch is down: no ring is watched.',
              description: 'Every ringwatch target{{ with $labels.job }} of job {{ . }}{{ end }} is down or absent; without ringwatch no ring member alert can fire: a member frozen now, or one that was paging, goes unseen.',
            },
          },
          {
            alert: 'RingwatchDynamoDBThrottled',
            expr: |||
              max without (%(R)s) (sum without (operation, result) (rate(ringwatch_requests_total{%(sel)s}[%(w)s]))) > %(th)s
            ||| % { R: R, sel: u.sel([rw, 'result="throttled"']), w: cfg.throttledWindow, th: u.num(cfg.throttledThreshold) },
            'for': cfg.throttledFor,
            labels: { severity: cfg.throttledSeverity },
            annotations: {
              summary: "ringwatch's reads of a DynamoDB table are being throttled.",
              description: "ringwatch's requests to table {{ $labels.table }} are throttled at {{ $value | humanize }}/s: the table's read capacity, which Cortex's ring also uses, is exhausted.",
            },
          },
          {
            alert: 'RingwatchDecodeErrors',
            expr: |||
              max without (%(R)s) (rate(ringwatch_decode_errors_total{%(rw)s}[%(w)s])) > 0
            ||| % { R: R, rw: rw, w: cfg.decodeErrorsWindow },
            'for': cfg.decodeErrorsFor,
            labels: { severity: cfg.decodeErrorsSeverity },
            annotations: {
              summary: 'ringwatch cannot decode ring items: members are hidden.',
              description: 'Items of table {{ $labels.table }} fail to decode ({{ $labels.reason }}) at {{ $value | humanize }}/s: the members they hold are missing from every ring metric and alert. Likely format drift after a Cortex upgrade.',
            },
          },
        ],
      },
    ],
  },
}
