// Cortex's own view of a hung ring write: an ingester that is up but whose ring CAS writes stopped
// succeeding. Both shapes recorded in tests/fixtures/cortex-hang/ qualify: attempts flat (a hang without a
// deadline) and attempts failing (CAS status 500 growing, 200 flat).
local u = import '../lib/utils.libsonnet';

{
  prometheusAlerts+:: {
    local cfg = $._config,
    local p = (import '../lib/promql.libsonnet')(cfg),
    local I = u.labels(p.groupLabels + cfg.ingesterInstanceLabels),
    local ing = cfg.ingesterSelector,
    local kv = cfg.ingesterKVSelector,
    local w = cfg.ingesterCASWindow,

    groups+: [
      {
        name: 'ringwatch-ingester',
        rules: [
          {
            alert: 'CortexIngesterCASFlatlined',
            expr: |||
              sum by (%(I)s) (increase(cortex_dynamodb_kv_cas_attempt_total{%(ing)s}[%(w)s]))
              unless on (%(I)s)
              (sum by (%(I)s) (increase(cortex_kv_request_duration_seconds_count{%(ok)s}[%(w)s])) > 0)
              and on (%(I)s)
              (up{%(up)s} == 1)
            ||| % {
              I: I,
              w: w,
              ing: u.sel([ing, kv]),
              ok: u.sel([ing, kv, 'operation="CAS"', 'status_code=~"2.."']),
              up: ing,
            },
            'for': cfg.ingesterCASFor,
            labels: { severity: cfg.ingesterCASSeverity },
            annotations: {
              summary: 'A Cortex ingester is up but its ring CAS writes stopped succeeding.',
              description: 'Ingester {{ with $labels.pod }}{{ . }}{{ else }}{{ $labels.instance }}{{ end }} (job {{ $labels.job }}) had no successful ring CAS in the last %s while answering scrapes; it made {{ $value | humanize }} CAS attempts in that time (0: a request hangs without a deadline; more: every attempt fails). Its ring entry is frozen.' % w,
            },
          },
        ],
      },
    ],
  },
}
